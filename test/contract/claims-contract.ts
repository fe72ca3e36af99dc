import { expect } from 'chai';
import type { Claim, ClaimStore } from '../../src/stores/claims';
import type { StoredObject } from '../../src/stores/store';

export interface ClaimsFixture {
  claims: ClaimStore;
  /** Creates or replaces an object; returns its new generation as `stat` would. */
  put(name: string, content: string): Promise<StoredObject>;
  /** Copies an object within the bucket as `gcloud storage cp` does; returns the copy as `stat` would. */
  copy(from: string, to: string): Promise<StoredObject>;
  /** The object as `stat` returns it now (claims may live in its metadata). */
  stat(name: string): Promise<StoredObject>;
  teardown(): Promise<void>;
}

const TABLE = 'p.ingest.events';
const claimFor = (jobId: string, destination = TABLE): Claim => ({
  jobId,
  at: Date.UTC(2026, 11, 1, 12, 0, 0),
  destination,
});

/** What every ClaimStore shares: at most one claim per generation and destination, changed by CAS. */
export function testClaimStore(name: string, setup: () => Promise<ClaimsFixture>): void {
  describe(`ClaimStore contract: ${name}`, function () {
    this.timeout(30_000);
    let fixture: ClaimsFixture;
    let claims: ClaimStore;
    beforeEach(async () => {
      fixture = await setup();
      claims = fixture.claims;
    });
    afterEach(() => fixture.teardown());

    it('reads no claim on a new object, and the claim a swap set, with its time', async () => {
      const object = await fixture.put('in/a.csv', 'a\n1\n');
      const before = await claims.read(object, TABLE);
      expect(before.claim).to.equal(undefined);
      const [swap] = await claims.swap([
        { object, claim: claimFor('job_1'), version: before.version },
      ]);
      expect(swap?.kind).to.equal('won');
      const after = await claims.read(await fixture.stat('in/a.csv'), TABLE);
      expect(after.claim).to.deep.equal(claimFor('job_1'));
      expect(after.version).to.not.equal(before.version);
    });

    it('refuses a swap whose version is stale: the first of two racing swaps wins', async () => {
      const object = await fixture.put('in/a.csv', 'a\n1\n');
      const { version } = await claims.read(object, TABLE);
      const [first] = await claims.swap([{ object, claim: claimFor('job_1'), version }]);
      const [second] = await claims.swap([{ object, claim: claimFor('job_2'), version }]);
      expect([first?.kind, second?.kind]).to.deep.equal(['won', 'lost']);
      expect((await claims.read(await fixture.stat('in/a.csv'), TABLE)).claim?.jobId).to.equal(
        'job_1',
      );
    });

    it('moves a claim from one job to the next with the version the last swap returned', async () => {
      const object = await fixture.put('in/a.csv', 'a\n1\n');
      const { version } = await claims.read(object, TABLE);
      const [first] = await claims.swap([{ object, claim: claimFor('job_1'), version }]);
      if (first?.kind !== 'won') throw new Error('first swap lost');
      const [second] = await claims.swap([
        { object, claim: claimFor('job_2'), version: first.state.version },
      ]);
      expect(second?.kind).to.equal('won');
      expect((await claims.read(await fixture.stat('in/a.csv'), TABLE)).claim?.jobId).to.equal(
        'job_2',
      );
    });

    it('lets exactly one of many concurrent swaps on one version win', async () => {
      const object = await fixture.put('in/a.csv', 'a\n1\n');
      const { version } = await claims.read(object, TABLE);
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          claims.swap([{ object, claim: claimFor(`job_${i}`), version }]),
        ),
      );
      expect(results.flat().filter((r) => r.kind === 'won')).to.have.length(1);
    });

    it('swaps each object of a batch on its own', async () => {
      const a = await fixture.put('in/a.csv', 'a\n1\n');
      const b = await fixture.put('in/b.csv', 'a\n2\n');
      const va = (await claims.read(a, TABLE)).version;
      await claims.swap([{ object: a, claim: claimFor('job_0'), version: va }]);
      const vb = (await claims.read(b, TABLE)).version;
      const results = await claims.swap([
        { object: a, claim: claimFor('job_1'), version: va },
        { object: b, claim: claimFor('job_1'), version: vb },
      ]);
      expect(results.map((r) => r.kind)).to.deep.equal(['lost', 'won']);
    });

    it('knows no claim of another destination, and none on a new generation of the object', async () => {
      const object = await fixture.put('in/a.csv', 'a\n1\n');
      const { version } = await claims.read(object, TABLE);
      await claims.swap([{ object, claim: claimFor('job_1'), version }]);
      const current = await fixture.stat('in/a.csv');
      expect((await claims.read(current, 'p.other.table')).claim).to.equal(undefined);
      await new Promise((resolve) => setTimeout(resolve, 5));
      const replaced = await fixture.put('in/a.csv', 'a\n3\n');
      expect(replaced.generation).to.not.equal(object.generation);
      expect((await claims.read(replaced, TABLE)).claim).to.equal(undefined);
    });

    it('knows no claim on a copy of a claimed object, and claims the copy by compare-and-swap', async () => {
      const object = await fixture.put('in/march.csv', 'a\n1\n');
      const { version } = await claims.read(object, TABLE);
      await claims.swap([{ object, claim: claimFor('job_1'), version }]);
      const copy = await fixture.copy('in/march.csv', 'in/march-resend.csv');
      const state = await claims.read(copy, TABLE);
      expect(state.claim).to.equal(undefined);
      const [stale] = await claims.swap([
        { object: copy, claim: claimFor('job_2'), version: `${state.version}0` },
      ]);
      expect(stale?.kind).to.equal('lost');
      const [swap] = await claims.swap([
        { object: copy, claim: claimFor('job_2'), version: state.version },
      ]);
      expect(swap?.kind).to.equal('won');
      const read = async (name: string) =>
        (await claims.read(await fixture.stat(name), TABLE)).claim;
      expect((await read('in/march-resend.csv'))?.jobId).to.equal('job_2');
      expect((await read('in/march.csv'))?.jobId).to.equal('job_1');
    });
  });
}
