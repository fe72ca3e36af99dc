import { expect } from 'chai';
import { describeAnswer } from '../../src/cli/events';
import type { ObjectResult } from '../../src/objects/outcomes';

describe('the terminal line of an outcome', () => {
  const line = (object: ObjectResult) =>
    describeAnswer({ status: 200, body: { outcome: object.outcome, objects: [object] } })[0];
  const loaded = {
    uri: 'gs://demo/us-states.csv',
    outcome: 'loaded',
    destination: 'ingest.us_states',
  } as const;

  const testData: { what: string; object: ObjectResult; expected: string }[] = [
    {
      what: 'a job of one object: its rows',
      object: { ...loaded, rows: 50 },
      expected: 'loaded    gs://demo/us-states.csv -> ingest.us_states (50 rows)',
    },
    {
      what: "a coalesced job whose object's rows are known: the object's own",
      object: { ...loaded, rows: 96, jobObjects: 32, objectRows: 3 },
      expected: 'loaded    gs://demo/us-states.csv -> ingest.us_states (3 rows)',
    },
    {
      what: "a coalesced job whose object's rows are not known: the job's, said to be the job's",
      object: { ...loaded, rows: 96, jobObjects: 32 },
      expected:
        'loaded    gs://demo/us-states.csv -> ingest.us_states (job of 32 objects, 96 rows)',
    },
    {
      what: 'a forced load on an append route: that the rows were added again',
      object: { ...loaded, rows: 50, appendedAgain: true },
      expected:
        'loaded    gs://demo/us-states.csv -> ingest.us_states (50 rows, appended again: forced)',
    },
    {
      what: 'schema changes',
      object: {
        ...loaded,
        rows: 2,
        schemaChanges: ['added column extra STRING', 'relaxed column price to NULLABLE'],
      },
      expected:
        'loaded    gs://demo/us-states.csv -> ingest.us_states (2 rows) schema: added column extra STRING, relaxed column price to NULLABLE',
    },
    {
      what: 'a rejection: its reason',
      object: { uri: 'gs://demo/x.csv', outcome: 'rejected', reason: 'no data rows' },
      expected: 'rejected  gs://demo/x.csv : no data rows',
    },
  ];
  for (const { what, object, expected } of testData) {
    it(what, () => expect(line(object)).to.equal(expected));
  }
});
