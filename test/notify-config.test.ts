import { expect } from 'chai';
import { loadConfig } from '../src/config';
import { ConfigError } from '../src/core/errors';

const TOPIC = 'projects/my-project/topics/ingest-outcomes';

function load(yaml: string, env: Record<string, string> = {}) {
  return loadConfig(env, (file) => {
    if (file === 'ingest.yaml') return yaml;
    throw Object.assign(new Error(`ENOENT: ${file}`), { code: 'ENOENT' });
  });
}

describe('notify in ingest.yaml', () => {
  it('is off without a notify field', () => {
    const config = load('routes: [{match: "**/*.csv"}]\n');
    expect(config.notify).to.equal(undefined);
    expect(config.routes[0]?.notify).to.equal(undefined);
  });

  it('at the top level applies to every route, with outcomes [loaded, rejected] by default', () => {
    const config = load(
      `notify: {topic: ${TOPIC}}\nroutes: [{match: "a/*.csv"}, {match: "**/*.csv"}]\n`,
    );
    const expected = { topic: TOPIC, outcomes: ['loaded', 'rejected'] };
    expect(config.notify).to.deep.equal(expected);
    expect(config.routes.map((r) => r.notify)).to.deep.equal([expected, expected]);
  });

  it('applies to the built-in routes too', () => {
    const config = load(`notify: {topic: ${TOPIC}, outcomes: [rejected]}\n`);
    expect(config.routes.map((r) => r.notify?.outcomes)).to.deep.equal([
      ['rejected'],
      ['rejected'],
    ]);
  });

  it("a route's own notify overrides the top level field by field; false turns it off", () => {
    const other = 'projects/other/topics/sales-loaded';
    const config = load(`notify: {topic: ${TOPIC}, outcomes: [loaded, rejected, skipped]}
routes:
  - match: "sales/*.csv"
    notify: {topic: ${other}}
  - match: "quiet/*.csv"
    notify: false
  - match: "oncall/*.csv"
    notify: {outcomes: [rejected, rejected]}
  - match: "**/*.csv"
`);
    expect(config.routes.map((r) => r.notify)).to.deep.equal([
      { topic: other, outcomes: ['loaded', 'rejected', 'skipped'] },
      undefined,
      { topic: TOPIC, outcomes: ['rejected'] },
      { topic: TOPIC, outcomes: ['loaded', 'rejected', 'skipped'] },
    ]);
  });

  it('takes every outcome an object can have', () => {
    const all = ['loaded', 'rejected', 'skipped', 'duplicate', 'queued'];
    const config = load(`notify: {topic: ${TOPIC}, outcomes: [${all.join(', ')}]}\n`);
    expect(config.notify?.outcomes).to.deep.equal(all);
  });

  it('reads PUBSUB_EMULATOR_HOST (an empty one is none)', () => {
    expect(load('{}', { PUBSUB_EMULATOR_HOST: 'localhost:8085' }).pubsubEmulatorHost).to.equal(
      'localhost:8085',
    );
    expect(load('{}', { PUBSUB_EMULATOR_HOST: '' }).pubsubEmulatorHost).to.equal(undefined);
  });

  const invalid: { name: string; yaml: string; error: string }[] = [
    {
      name: 'a topic that is not a full name',
      yaml: 'notify: {topic: ingest-outcomes}',
      error: 'ingest.yaml: notify.topic: must be a full topic name: projects/P/topics/T',
    },
    {
      name: 'a top-level notify without a topic',
      yaml: 'notify: {outcomes: [loaded]}',
      error: 'ingest.yaml: notify.topic: is missing',
    },
    {
      name: 'an outcome that does not exist',
      yaml: `notify: {topic: ${TOPIC}, outcomes: [loaded, failed]}`,
      error:
        'ingest.yaml: notify.outcomes[1]: is "failed": must be one of loaded, rejected, skipped, duplicate, queued',
    },
    {
      name: 'an empty list of outcomes',
      yaml: `notify: {topic: ${TOPIC}, outcomes: []}`,
      error: 'ingest.yaml: notify.outcomes: must name at least one outcome',
    },
    {
      name: 'an unknown field',
      yaml: `notify: {topic: ${TOPIC}, filter: rejected}`,
      error: 'ingest.yaml: notify.filter: is not a known field',
    },
    {
      name: "a route's outcome that does not exist",
      yaml: `notify: {topic: ${TOPIC}}\nroutes: [{match: "**/*.csv", notify: {outcomes: [loded]}}]`,
      error:
        'ingest.yaml: routes[0].notify: outcomes[0] is "loded": must be one of loaded, rejected, skipped, duplicate, queued',
    },
    {
      name: "a route's topic that is not a full name",
      yaml: 'routes: [{match: "**/*.csv", notify: {topic: "projects/p/topics/x y"}}]',
      error: 'ingest.yaml: routes[0].notify.topic: must be a full topic name',
    },
    {
      name: 'a route notify of true',
      yaml: 'routes: [{match: "**/*.csv", notify: true}]',
      error:
        'ingest.yaml: routes[0].notify: is true: must be false (no messages for this route) or a mapping of topic and outcomes',
    },
    {
      name: 'a route notify with no topic anywhere',
      yaml: 'routes: [{match: "a/*.csv"}, {match: "**/*.csv", notify: {outcomes: [rejected]}}]',
      error: 'ingest.yaml: routes[1].notify.topic: is missing, and there is no top-level notify',
    },
  ];
  for (const c of invalid) {
    it(`stops on ${c.name}, naming the field`, () => {
      let caught: unknown;
      try {
        load(c.yaml);
      } catch (error) {
        caught = error;
      }
      expect(caught).to.be.instanceOf(ConfigError);
      expect((caught as Error).message).to.include(c.error);
      expect((caught as Error).message).not.to.include('\n');
    });
  }
});
