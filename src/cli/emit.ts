import { Command } from 'commander';
import {
  describeAnswer,
  describeSendError,
  finalizedEvent,
  forcedReloadEvent,
  sendEvent,
  type EventAnswer,
} from './events';
import { defaultUrl, localObjectName, readConfig, statObject } from './context';

export function emitCommand(): Command {
  return new Command('emit')
    .description(
      'send one google.cloud.storage.object.v1.finalized CloudEvent for an object, or with --force a Pub/Sub reprocess request that loads it again',
    )
    .argument('<object>', 'a file under LOCAL_DATA_DIR/buckets/<bucket>/, or gs://bucket/name')
    .option('--url <url>', 'the receiver', defaultUrl())
    .option(
      '--force',
      'send a google.cloud.pubsub.topic.v1.messagePublished event asking to load this generation again, even if it was loaded before',
    )
    .action(async (target: string, options: { url: string; force?: boolean }) => {
      const config = readConfig();
      const gs = /^gs:\/\/([^/]+)\/(.+)$/.exec(target);
      const { bucket, name } = gs
        ? { bucket: gs[1] as string, name: gs[2] as string }
        : localObjectName(config.localDataDir, target);
      const object = await statObject(config, bucket, name);
      const event = options.force
        ? forcedReloadEvent(object, config.project ?? 'local')
        : finalizedEvent(object);
      let answer: EventAnswer;
      try {
        answer = await sendEvent(options.url, event);
      } catch (error) {
        throw new Error(
          `${describeSendError(options.url, error)}: start a receiver with \`npm start\` (gcs-bq-ingest dev), or name a running one with --url`,
        );
      }
      for (const line of describeAnswer(answer)) console.log(line);
      if (answer.status !== 200) process.exitCode = 1;
    });
}
