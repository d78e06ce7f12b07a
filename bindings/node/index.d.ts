// Types of the `deltapack` package (see index.js).

export interface UpdaterOptions {
  /** Repository URL (or directory). Without it only local calls work. */
  repository?: string
  /** The text of the publisher's `.pub` file. */
  publicKey?: string
  /** Channel (default `stable`). */
  channel?: string
  /** Platform name as published (`linux-x86_64`, ...). */
  platform?: string
  /** Exactly one of installDir (versions side by side), executable, bundle. */
  installDir?: string
  executable?: string
  bundle?: string
  stateDir?: string
  currentVersion?: string
  keepVersions?: number
  healthLaunches?: number
  allowHosts?: string[]
}

/** One progress event (the Rust `Event`): `kind` and its fields. */
export type ProgressEvent =
  | { kind: 'checking' }
  | { kind: 'downloading'; path: string; done: number; total: number }
  | { kind: 'downloaded'; path: string; bytes: number }
  | { kind: 'applying'; to: string }
  | { kind: 'fallback'; reason: string }
  | { kind: 'installed'; version: string }

export interface ProgressOptions {
  onProgress?: (event: ProgressEvent) => void
}

export interface Update {
  readonly version: string
  readonly fromVersion: string | null
  readonly notes: string
  readonly downloadBytes: number
  readonly fullBytes: number
  readonly steps: string[]
}

export interface Downloaded {}

export interface Staged {
  readonly steps: string[]
  readonly fallback: string | null
}

/** Errors thrown and rejected: `code` is the exact cause, `kind` its family. */
export interface DeltapackError extends Error {
  code: string
  kind: 'config' | 'network' | 'signature' | 'package' | 'unavailable' | 'layout' | 'busy' | 'io'
}

export declare class Updater {
  constructor(options: UpdaterOptions)
  check(options?: { manual?: boolean }): Promise<Update | null>
  checkVersion(version: string): Promise<Update>
  download(update: Update, options?: ProgressOptions): Promise<Downloaded>
  apply(downloaded: Downloaded, options?: ProgressOptions): Promise<Staged>
  install(staged: Staged, options?: ProgressOptions): Promise<void>
  update(options?: ProgressOptions & { manual?: boolean }): Promise<string | null>
  installVersion(version: string, options?: ProgressOptions): Promise<string[]>
  rollback(): Promise<string>
  launched(): Promise<{ kind: string; launches?: number; from?: string; to?: string }>
  markHealthy(): Promise<void>
  recover(): Promise<Record<string, unknown>>
  /** As `deltapack update status --json` prints it (`current`, `installed`, ...). */
  status(): Record<string, any>
  /** As `deltapack update history --json` prints it. */
  history(): Array<Record<string, any>>
}
