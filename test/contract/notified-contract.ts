import { expect } from 'chai';
import type { NotificationRecord, SentMessage } from '../../src/stores/notified';
import type { StoredObject } from '../../src/stores/store';

export interface NotifiedFixture {
  record: NotificationRecord;
  /** Writes an object (a new generation each time) and returns it. */
  put(name: string, content: string): Promise<StoredObject>;
  /** A fresh record over the same place, as after a restart. */
  reopen(): NotificationRecord;
  teardown(): Promise<void>;
}

function message(object: StoredObject, key: string, remember = true): SentMessage {
  const sent: SentMessage = {
    topic: 'projects/p/topics/outcomes',
    attributes: { outcome: 'loaded', 'ingest-key': key, bucket: object.bucket },
    data: { uri: `gs://${object.bucket}/${object.name}`, generation: object.generation },
  };
  if (remember) sent.recordOn = { object, key };
  return sent;
}

/** What every NotificationRecord does, whatever keeps it. */
export function testNotificationRecord(name: string, setup: () => Promise<NotifiedFixture>): void {
  describe(`NotificationRecord contract: ${name}`, function () {
    this.timeout(30_000);
    let fixture: NotifiedFixture;
    beforeEach(async () => {
      fixture = await setup();
    });
    afterEach(() => fixture.teardown());

    it('says a message went out once it is recorded, for that key only', async () => {
      const object = await fixture.put('in/a.csv', 'id\n1\n');
      const other = await fixture.put('in/b.csv', 'id\n2\n');
      const items = [
        { object, key: 'k1' },
        { object, key: 'k2' },
        { object: other, key: 'k3' },
      ];
      expect(await fixture.record.sent(items)).to.deep.equal([false, false, false]);
      await fixture.record.record([message(object, 'k1'), message(other, 'k3')]);
      expect(await fixture.record.sent(items)).to.deep.equal([true, false, true]);
      expect(await fixture.reopen().sent(items)).to.deep.equal([true, false, true]);
    });

    it('keeps the record of one generation from the next', async () => {
      const first = await fixture.put('in/a.csv', 'id\n1\n');
      await fixture.record.record([message(first, 'k1')]);
      const second = await fixture.put('in/a.csv', 'id\n1\n2\n');
      expect(second.generation).to.not.equal(first.generation);
      expect(await fixture.record.sent([{ object: second, key: 'k2' }])).to.deep.equal([false]);
      // The record of a generation that is no longer the live one is dropped without an error.
      await fixture.record.record([message(first, 'k1b')]);
      await fixture.record.record([message(second, 'k2')]);
      expect(await fixture.record.sent([{ object: second, key: 'k2' }])).to.deep.equal([true]);
    });

    it('records nothing when given nothing', async () => {
      await fixture.record.record([]);
      const object = await fixture.put('in/a.csv', 'id\n1\n');
      expect(await fixture.record.sent([{ object, key: 'k' }])).to.deep.equal([false]);
    });
  });
}
