import { expect } from 'chai';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createFinalityGate, isFinal } from '../../src/cli/finality';
import { canSeeWriters, isWriteFlags, openForWriting } from '../../src/cli/writers';

describe('when a local file counts as finalized', () => {
  const now = 10_000;
  const cases: {
    what: string;
    mtimeMs: number;
    unchangedSince: number;
    writing: boolean | undefined;
    stableMs: number;
    final: boolean;
  }[] = [
    {
      what: 'open for writing',
      mtimeMs: 0,
      unchangedSince: 0,
      writing: true,
      stableMs: 200,
      final: false,
    },
    {
      what: 'just written',
      mtimeMs: now - 50,
      unchangedSince: now,
      writing: false,
      stableMs: 200,
      final: false,
    },
    {
      what: 'closed and quiet',
      mtimeMs: now - 250,
      unchangedSince: now,
      writing: false,
      stableMs: 200,
      final: true,
    },
    {
      what: 'renamed into place (old mtime)',
      mtimeMs: now - 60_000,
      unchangedSince: now,
      writing: false,
      stableMs: 200,
      final: true,
    },
    {
      what: 'seen unchanged long enough (mtime in the future)',
      mtimeMs: now + 5000,
      unchangedSince: now - 200,
      writing: false,
      stableMs: 200,
      final: true,
    },
    {
      what: 'writers unknown, quiet for less than the longer wait',
      mtimeMs: now - 1500,
      unchangedSince: now,
      writing: undefined,
      stableMs: 2000,
      final: false,
    },
    {
      what: 'writers unknown, quiet for the longer wait',
      mtimeMs: now - 2000,
      unchangedSince: now,
      writing: undefined,
      stableMs: 2000,
      final: true,
    },
  ];
  for (const { what, final, ...input } of cases) {
    it(`${what}: ${final ? 'final' : 'not yet'}`, () => {
      expect(isFinal({ now, ...input })).to.equal(final);
    });
  }

  describe('the gate', () => {
    let dir: string;
    beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'finality-'))));
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('waits while a writer has the file open, then lets it through', async () => {
      const file = path.join(dir, 'a.csv');
      fs.writeFileSync(file, 'a\n1\n');
      fs.utimesSync(file, new Date(0), new Date(0));
      let open = true;
      const gate = createFinalityGate({
        stableMs: 20,
        writers: async (files) => new Set(open ? files : []),
      });
      let final: boolean | undefined;
      void gate.whenFinal(file).then((f) => (final = f));
      await new Promise((r) => setTimeout(r, 300));
      expect(final).to.equal(undefined);
      expect(gate.waiting()).to.deep.equal([file]);
      open = false;
      expect(await gate.whenFinal(file)).to.equal(true);
      expect(gate.waiting()).to.deep.equal([]);
    });

    it('answers false for a file deleted while it waits, and for every file when closed', async () => {
      const gone = path.join(dir, 'gone.csv');
      const held = path.join(dir, 'held.csv');
      fs.writeFileSync(gone, 'a\n');
      fs.writeFileSync(held, 'a\n');
      const gate = createFinalityGate({ stableMs: 20, writers: async (files) => new Set(files) });
      const waitingGone = gate.whenFinal(gone);
      const waitingHeld = gate.whenFinal(held);
      fs.rmSync(gone);
      expect(await waitingGone).to.equal(false);
      gate.close();
      expect(await waitingHeld).to.equal(false);
    });
  });

  describe('writers, read from /proc', function () {
    before(function () {
      if (!canSeeWriters()) this.skip();
    });

    it('reads the access mode from fdinfo flags', () => {
      expect(isWriteFlags('pos:\t0\nflags:\t0100000\nmnt_id:\t1\n')).to.equal(false);
      expect(isWriteFlags('pos:\t0\nflags:\t0100001\n')).to.equal(true);
      expect(isWriteFlags('pos:\t0\nflags:\t02102002\n')).to.equal(true);
      expect(isWriteFlags('')).to.equal(false);
    });

    it('sees a shell redirect holding a file open, and not a reader', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'writers-'));
      const written = path.join(dir, 'written.csv');
      const read = path.join(dir, 'read.csv');
      fs.writeFileSync(read, 'a\n');
      const child = spawn('bash', ['-c', `(printf 'a\\n'; sleep 30) > written.csv < read.csv`], {
        cwd: dir,
        stdio: 'ignore',
        detached: true, // its own process group, so that the subshell's `sleep` is stopped too
      });
      const exited = new Promise((r) => child.once('exit', r));
      const group = -(child.pid ?? NaN);
      if (Number.isNaN(group)) throw new Error('bash did not start');
      try {
        while (!fs.existsSync(written)) await new Promise((r) => setTimeout(r, 10));
        const open = await openForWriting(new Set([written, read]));
        expect([...open]).to.deep.equal([written]);
        process.kill(group, 'SIGTERM');
        await exited;
        while ((await openForWriting(new Set([written]))).size > 0) {
          await new Promise((r) => setTimeout(r, 10)); // the subshell's sleep goes a moment later
        }
      } finally {
        if (child.exitCode === null && child.signalCode === null) process.kill(group);
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
