// Electron main process with deltapack: check at start, tell the user,
// download and rebuild in the background with progress, switch on quit.
// (Electron cannot be installed on the machines that test this package;
// the calls below are the ones test/update.test.js exercises.)
'use strict'

const { app, BrowserWindow, Notification } = require('electron')
const fs = require('node:fs')
const path = require('node:path')
const { Updater } = require('deltapack')

const updater = new Updater({
  repository: 'https://updates.example.com/myapp/',
  publicKey: fs.readFileSync(path.join(__dirname, 'release.pub'), 'utf8'),
  platform: `${process.platform}-${process.arch}`,
  // The app runs as <root>/versions/<v>/myapp: the install root is three up.
  installDir: path.resolve(path.dirname(app.getPath('exe')), '..', '..'),
})

let staged = null

async function checkForUpdates(win) {
  // Probation: roll back a version that never reported healthy.
  const launch = await updater.launched()
  if (launch.kind === 'rolled_back') {
    new Notification({ title: `Restored ${launch.to}`, body: `${launch.from} did not start properly.` }).show()
  }
  const update = await updater.check()
  if (!update) return
  new Notification({ title: `Version ${update.version} is available`, body: update.notes.slice(0, 200) }).show()
  const onProgress = (e) => {
    if (e.kind === 'downloading') win.setProgressBar(e.done / e.total)
  }
  const downloaded = await updater.download(update, { onProgress })
  staged = await updater.apply(downloaded, { onProgress })
  win.setProgressBar(-1)
}

app.whenReady().then(async () => {
  const win = new BrowserWindow({ width: 800, height: 600 })
  await win.loadFile('index.html')
  // The window works: end the probation of this version.
  await updater.markHealthy()
  checkForUpdates(win).catch((e) => console.error(`update check failed (${e.code}): ${e.message}`))
})

app.on('will-quit', (event) => {
  if (!staged) return
  event.preventDefault()
  const s = staged
  staged = null
  updater.install(s).finally(() => app.quit())
})
