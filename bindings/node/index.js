// deltapack for Node: the update client of a signed deltapack repository.
//
// Every long call returns a Promise and runs off the JS thread, so an
// Electron main process never blocks. Errors are `Error` objects with a
// stable `code` (the Rust variant: `network`, `artifact_hash`, ...) and a
// `kind` (its family: `network`, `signature`, `package`, ...).
'use strict'

const native = require('./deltapack.node')

/** Turns the native error (`code\0kind\0message`) into a plain Error. */
function convert(e) {
  if (!(e instanceof Error) || typeof e.message !== 'string') return e
  const parts = e.message.split('\0')
  if (parts.length !== 3) return e
  const err = new Error(parts[2])
  err.code = parts[0]
  err.kind = parts[1]
  return err
}

async function wrap(promise) {
  try {
    return await promise
  } catch (e) {
    throw convert(e)
  }
}

function sync(f) {
  try {
    return f()
  } catch (e) {
    throw convert(e)
  }
}

class Updater {
  #n

  /**
   * @param {import('./index').UpdaterOptions} options
   */
  constructor(options) {
    this.#n = sync(() => new native.Updater(options || {}))
  }

  check(options = {}) {
    return wrap(this.#n.check(!!options.manual))
  }

  checkVersion(version) {
    return wrap(sync(() => this.#n.checkVersion(version)))
  }

  download(update, options = {}) {
    return wrap(this.#n.download(update, options.onProgress))
  }

  apply(downloaded, options = {}) {
    return wrap(this.#n.apply(downloaded, options.onProgress))
  }

  install(staged, options = {}) {
    return wrap(this.#n.install(staged, options.onProgress))
  }

  update(options = {}) {
    return wrap(this.#n.update(options.onProgress, !!options.manual))
  }

  installVersion(version, options = {}) {
    return wrap(sync(() => this.#n.installVersion(version, options.onProgress)))
  }

  rollback() {
    return wrap(this.#n.rollback())
  }

  launched() {
    return wrap(this.#n.launched())
  }

  markHealthy() {
    return wrap(this.#n.markHealthy())
  }

  recover() {
    return wrap(this.#n.recover())
  }

  status() {
    return sync(() => this.#n.status())
  }

  history() {
    return sync(() => this.#n.history())
  }
}

module.exports = { Updater }
