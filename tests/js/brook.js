// Runs real brook nodes for the kafkajs tests: `$BROOK_BIN node` (default
// <repo>/target/release/brook) on an ephemeral port with its own data directory, ready once it
// printed its ready line; killed by stop() or when the test process exits.

'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const REPO = path.resolve(__dirname, '..', '..');
const BROOK_BIN = process.env.BROOK_BIN || path.join(REPO, 'target', 'release', 'brook');
const STEP_TIMEOUT_MS = 45_000;

const running = new Set();
process.on('exit', () => {
  for (const b of running) b.stop();
});

function log(...args) {
  console.log(`[${new Date().toISOString()}]`, ...args);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Waits until `check` returns a truthy value (or throws only transiently); fails with `what` and
// the last observation after `timeoutMs`.
async function waitFor(what, check, timeoutMs = STEP_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const result = await check();
      if (result) return result;
      last = 'not yet';
    } catch (e) {
      last = e && e.message ? e.message : String(e);
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`);
    }
    await sleep(200);
  }
}

class Brook {
  constructor() {
    if (!fs.existsSync(BROOK_BIN)) {
      throw new Error(`brook binary not found at ${BROOK_BIN} (set BROOK_BIN)`);
    }
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brook-js-'));
    this.logPath = path.join(this.dir, 'brook.stderr.log');
    this.proc = null;
  }

  // Starts the node with `-o key=value` settings; resolves to its `host:port`.
  start(settings = {}) {
    const stderr = fs.openSync(this.logPath, 'a');
    const env = { ...process.env, NO_COLOR: '1' };
    delete env.BROOK_BIN;
    const args = ['node', '--listeners', 'PLAINTEXT://127.0.0.1:0', '--log-dirs', path.join(this.dir, 'data')];
    for (const [k, v] of Object.entries(settings)) args.push('-o', `${k}=${v}`);
    this.proc = spawn(BROOK_BIN, args, { stdio: ['ignore', 'pipe', stderr], env });
    running.add(this);
    const proc = this.proc;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('brook printed no ready line within 30 s')), 30_000);
      proc.on('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`brook exited (code ${code}, signal ${signal}) before it was ready`));
      });
      readline.createInterface({ input: proc.stdout }).on('line', (line) => {
        const m = /^brook node (\S+) ready on (\S+):(\d+)\s*$/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(`${m[2].replace(/^\[|\]$/g, '')}:${m[3]}`);
        }
      });
    });
  }

  stop() {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGKILL');
    }
    running.delete(this);
  }

  // Removes the data directory (after stop()).
  clean() {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  logTail(lines = 40) {
    try {
      const text = fs.readFileSync(this.logPath, 'utf8').replace(/\x1b\[[0-9;]*m/g, '');
      return text.split('\n').slice(-lines).join('\n');
    } catch (e) {
      return `(no log: ${e.message})`;
    }
  }
}

// Runs `main` with an overall time limit: exit 0 when it resolves, 1 when it throws, 2 on the
// time limit; the tail of every node's log is printed on failure.
function runTest(name, totalTimeoutMs, main) {
  const nodes = () => [...running];
  const fail = (code, why) => {
    console.error(`FAIL: ${why}`);
    for (const b of nodes()) console.error(`--- brook stderr tail (${b.logPath}) ---\n${b.logTail()}`);
    process.exit(code);
  };
  const overall = setTimeout(() => fail(2, `${name} did not finish within ${totalTimeoutMs} ms`), totalTimeoutMs);
  main()
    .then(() => {
      clearTimeout(overall);
      process.exit(0);
    })
    .catch((e) => {
      clearTimeout(overall);
      fail(1, e && e.stack ? e.stack : e);
    });
}

module.exports = { Brook, log, sleep, waitFor, runTest };
