// The Node addon against a real repository: made by `deltapack release`
// from the sample app's two versions, served on loopback by `deltapack
// serve`. Run with `node --test test/` (DELTAPACK_BIN: the CLI, default
// target/debug/deltapack of the checkout).
'use strict'

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync, spawn } = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const readline = require('node:readline')

const { Updater } = require('..')

const ROOT = path.resolve(__dirname, '../../..')
const EXAMPLE = path.join(ROOT, 'testdata', 'example')
const CLI = process.env.DELTAPACK_BIN || path.join(ROOT, 'target', 'debug', 'deltapack')

const run = (...args) => execFileSync(CLI, args, { encoding: 'utf8' })

let tmp, url, pub, server

before(async () => {
  if (!process.env.DELTAPACK_BIN && !fs.existsSync(CLI)) {
    execFileSync('cargo', ['build', '--quiet', '-p', 'deltapack-cli'], { cwd: ROOT, stdio: 'inherit' })
  }
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deltapack-node-'))
  run('keygen', '-o', path.join(tmp, 'k'))
  pub = fs.readFileSync(path.join(tmp, 'k.pub'), 'utf8')
  const repo = path.join(tmp, 'repo')
  for (const [n, v] of [[1, '1.0.0'], [2, '1.1.0']]) {
    run('release', '--level', '3', '--repo', repo, '--version', v, '--channel', 'stable',
      '--key', path.join(tmp, 'k.key'), `--platform=linux=${path.join(EXAMPLE, `v${n}`)}`,
      ...(n === 1 ? ['--init'] : []))
  }
  server = spawn(CLI, ['serve', repo, '--addr', '127.0.0.1:0', '--quiet'], { stdio: ['ignore', 'pipe', 'inherit'] })
  const line = await new Promise((resolve) => readline.createInterface({ input: server.stdout }).once('line', resolve))
  url = line.trim().split(' ').pop()
})

after(() => {
  server.kill()
  fs.rmSync(tmp, { recursive: true, force: true })
})

/** A digest of every file's path and bytes under `root`. */
function treeDigest(dir) {
  const root = fs.realpathSync(dir)
  const h = crypto.createHash('sha256')
  const walk = (dir) => fs.readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .forEach((e) => {
      const p = path.join(dir, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.isFile()) h.update(path.relative(root, p) + '\0').update(fs.readFileSync(p))
    })
  walk(root)
  return h.digest('hex')
}

const updater = (app, extra = {}) =>
  new Updater({ repository: url, publicKey: pub, platform: 'linux', installDir: app, ...extra })

test('install, update through a delta with progress, roll back', async () => {
  const app = path.join(tmp, 'app1')
  const u = updater(app)
  assert.deepEqual(await u.installVersion('1.0.0'), ['full 1.0.0'])
  assert.equal(u.status().current, '1.0.0')
  assert.equal(treeDigest(path.join(app, 'current')), treeDigest(path.join(EXAMPLE, 'v1')))

  const offer = await u.check()
  assert.equal(offer.fromVersion, '1.0.0')
  assert.equal(offer.version, '1.1.0')
  assert.deepEqual(offer.steps, ['delta 1.0.0->1.1.0'])
  assert.ok(offer.downloadBytes > 0 && offer.downloadBytes < offer.fullBytes)

  const events = []
  const done = await u.update({ onProgress: (e) => events.push(e) })
  assert.equal(done, '1.1.0')
  // Events queued from the pool run before the Promise's continuation.
  await new Promise((r) => setImmediate(r))
  const kinds = events.map((e) => e.kind)
  assert.equal(kinds[0], 'checking')
  assert.ok(kinds.includes('downloading') && kinds.includes('applying'), kinds.join(','))
  assert.deepEqual(events.at(-1), { kind: 'installed', version: '1.1.0' })
  const dl = events.filter((e) => e.kind === 'downloading').at(-1)
  assert.equal(dl.done, dl.total)
  assert.equal(treeDigest(path.join(app, 'current')), treeDigest(path.join(EXAMPLE, 'v2')))
  const last = u.history().filter((e) => e.action !== 'prune').at(-1)
  assert.deepEqual(last.path, ['delta 1.0.0->1.1.0'])
  assert.equal(u.status().on_probation.version, '1.1.0')
  assert.deepEqual(await u.launched(), { kind: 'on_probation', launches: 1 })

  assert.equal(await u.rollback(), '1.0.0')
  assert.equal(u.status().current, '1.0.0')
  assert.equal(treeDigest(path.join(app, 'current')), treeDigest(path.join(EXAMPLE, 'v1')))
  assert.equal(await u.check(), null, '1.1.0 is refused after the rollback')
})

test('step by step, and local calls without a repository', async () => {
  const app = path.join(tmp, 'app2')
  const u = updater(app)
  await u.installVersion('1.0.0')
  const offer = await u.check()
  const d = await u.download(offer)
  const s = await u.apply(d)
  assert.deepEqual(s.steps, ['delta 1.0.0->1.1.0'])
  assert.equal(s.fallback, null)
  await u.install(s)
  await u.markHealthy()
  const local = new Updater({ installDir: app })
  assert.equal(local.status().current, '1.1.0')
  assert.deepEqual(await local.launched(), { kind: 'healthy' })
})

test('errors carry a stable code and kind', async () => {
  assert.throws(() => new Updater({ repository: url, publicKey: 'nope', platform: 'linux', installDir: path.join(tmp, 'x') }),
    (e) => e.code === 'config' && e.kind === 'config' && /publicKey/.test(e.message))
  assert.throws(() => new Updater({ repository: url, publicKey: pub, platform: 'linux' }),
    (e) => e.code === 'config' && /installDir/.test(e.message))
  const u = updater(path.join(tmp, 'app3'))
  await assert.rejects(u.rollback(), (e) => e instanceof Error && e.code === 'nothing_installed' && e.kind === 'unavailable')
  await assert.rejects(u.installVersion('9.9.9'), (e) => e.code === 'not_available')
  await assert.rejects(updater(path.join(tmp, 'app4'), { channel: 'stabel' }).check(),
    (e) => e.code === 'unknown_channel' && /did you mean "stable"/.test(e.message))
  run('keygen', '-o', path.join(tmp, 'other'))
  const other = fs.readFileSync(path.join(tmp, 'other.pub'), 'utf8')
  await assert.rejects(updater(path.join(tmp, 'app5'), { publicKey: other }).check(),
    (e) => e.code === 'manifest' && e.kind === 'signature')
})

test('long calls run off the JS thread: they return before the work is done', async () => {
  const u = updater(path.join(tmp, 'app6'))
  let returned = 0
  let total = 0
  for (const v of ['1.0.0', '1.1.0', '1.0.0', '1.1.0']) {
    const t0 = performance.now()
    const p = u.installVersion(v)
    returned += performance.now() - t0
    await p
    total += performance.now() - t0
  }
  assert.equal(u.status().current, '1.1.0')
  assert.ok(returned < total / 4, `returned after ${returned} ms of ${total} ms`)
})
