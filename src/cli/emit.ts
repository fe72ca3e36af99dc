import { Command } from 'commander';
import { describeAnswer, finalizedEvent, sendEvent } from './events';
import { defaultUrl, localObjectName, readConfig, statObject } from './context';

export function emitCommand(): Command {
  return new Command('emit')
    .description('send one google.cloud.storage.object.v1.finalized CloudEvent for an object')
    .argument('<object>', 'a file under LOCAL_DATA_DIR/buckets/<bucket>/, or gs://bucket/name')
    .option('--url <url>', 'the receiver', defaultUrl())
    .action(async (target: string, options: { url: string }) => {
      const config = readConfig();
      const gs = /^gs:\/\/([^/]+)\/(.+)$/.exec(target);
      const { bucket, name } = gs
        ? { bucket: gs[1] as string, name: gs[2] as string }
        : localObjectName(config.localDataDir, target);
      const object = await statObject(config, bucket, name);
      const answer = await sendEvent(options.url, finalizedEvent(object));
      for (const line of describeAnswer(answer)) console.log(line);
      if (answer.status !== 200) process.exitCode = 1;
    });
}
