import { expect } from 'chai';
import { startCloudServices, BUCKET, PROJECT, type CloudServices } from '../helpers/cloud-services';

const OBJECTS = 120;
const FAULT_RATE = 0.1;
const MAX_DELIVERIES = 10;
/**
 * Every wait of the deployment shortened by this factor: Pub/Sub's redelivery backoff (10 s doubling
 * to 600 s, eventarc/), the request budget (INGEST_WAIT_SECONDS, 540) and the claim grace (120 s).
 * The client libraries' own retry pauses (about 1 s, doubling) are not shortened: at 1/20 they alone
 * pushed a batch's claiming past half the shortened grace, which the deployment never sees.
 */
const SCALE = 1 / 10;
const backoffMs = (attempt: number) => Math.min(10_000 * 2 ** (attempt - 1), 600_000) * SCALE;

describe('convergence under 10% transient faults, deliveries spaced as Pub/Sub spaces them', function () {
  this.timeout(600_000);
  let cloud: CloudServices;
  // A fixed sequence, so that a failure can be replayed.
  let seed = 11;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const sometimes = () => random() < FAULT_RATE / 4;

  before(async () => {
    cloud = await startCloudServices({ claimGraceMs: 120_000 * SCALE, jobDurationMs: 50 });
  });
  after(() => cloud?.close());

  it(`settles each of ${OBJECTS} objects within ${MAX_DELIVERIES} deliveries, loaded once`, async () => {
    const names = Array.from({ length: OBJECTS }, (_, i) => `in/part-${i}.csv`);
    names.forEach((name, i) => cloud.gcs.put(BUCKET, name, `id,value\n${i},a\n${i},b\n`));
    for (const server of [cloud.gcs, cloud.bq]) {
      server.fail({ times: Infinity, match: sometimes, status: 503 });
      server.fail({ times: Infinity, match: sometimes, status: 500 });
      server.fail({ times: Infinity, match: sometimes, status: 429 });
      server.fail({ times: Infinity, match: sometimes, reset: true });
    }
    cloud.bq.fail({ times: Infinity, match: () => random() < 0.02, delayMs: 5000 });
    const attempts = new Map<string, number>();
    const deliver = async (name: string) => {
      for (let attempt = 1; ; attempt++) {
        attempts.set(name, attempt);
        const outcome = await cloud.event(name, 540_000 * SCALE).then(
          (result) => result.outcome,
          () => 'nack',
        );
        if (outcome !== 'nack') return expect(outcome, name).to.be.oneOf(['loaded', 'duplicate']);
        if (attempt >= 3 * MAX_DELIVERIES) return;
        await new Promise((resolve) => setTimeout(resolve, backoffMs(attempt)));
      }
    };
    await Promise.all(names.map(deliver));
    cloud.gcs.clearFaults();
    cloud.bq.clearFaults();

    const distribution = new Map<number, number>();
    for (const n of attempts.values()) distribution.set(n, (distribution.get(n) ?? 0) + 1);
    const sorted = [...distribution.entries()].sort(([a], [b]) => a - b);
    console.log(
      `      deliveries per object (deliveries: objects): ${sorted.map(([n, c]) => `${n}: ${c}`).join(', ')}`,
    );
    expect(cloud.bq.rows(PROJECT, 'ingest', 'events')).to.equal(2 * OBJECTS);
    expect(Math.max(...attempts.values())).to.be.at.most(MAX_DELIVERIES);
  });
});
