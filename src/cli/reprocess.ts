import { Command, Option } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { fanOutMessages } from '../objects/fanout';
import { createPubSubPublisher, type OutgoingMessage } from '../objects/publisher';
import { BucketNotFoundError, type ObjectStore } from '../stores/store';
import { createStore } from '../receiver/backend';
import type { Backend } from '../config';
import { errorMessage, firstLine } from '../core/errors';
import { readConfig } from './context';

interface Options {
  topic: string;
  bucket: string;
  name?: string;
  prefix?: string;
  generation?: string;
  expand?: boolean;
  force?: boolean;
  dryRun?: boolean;
}

export function reprocessCommand(): Command {
  return new Command('reprocess')
    .description('publish reprocess requests to Pub/Sub (honours PUBSUB_EMULATOR_HOST)')
    .requiredOption('--topic <topic>', 'topic name or projects/P/topics/T')
    .requiredOption('--bucket <bucket>', 'the bucket')
    .addOption(new Option('--name <name>', 'one object').conflicts('prefix'))
    .addOption(
      new Option('--prefix <prefix>', 'every routed object under this prefix').conflicts('name'),
    )
    .addOption(
      new Option('--generation <generation>', 'with --name: that generation').conflicts('prefix'),
    )
    .option(
      '--expand',
      'with --prefix: list here and publish one message per load job, with progress',
    )
    .option('--force', 'load again even if that generation was loaded before')
    .option('--dry-run', 'print the messages instead of publishing them')
    .action(async (options: Options) => {
      if (options.name === undefined && options.prefix === undefined)
        throw new Error('one of --name or --prefix is required');
      if (options.expand && options.prefix === undefined)
        throw new Error('--expand goes with --prefix');
      if (options.generation !== undefined && !/^[1-9][0-9]*$/.test(options.generation))
        throw new Error(`--generation: "${options.generation}" is not a positive integer`);
      const config = readConfig();
      const store = await createStore(config);
      await requireBucket(store, options.bucket, options.prefix ?? options.name ?? '');
      const publisher = createPubSubPublisher(config.project);
      const send = async (messages: OutgoingMessage[]) => {
        if (options.dryRun) {
          for (const m of messages) console.log(`would publish ${JSON.stringify(m.json)}`);
          return;
        }
        const ids = await publisher.publish(options.topic, messages).catch((error: unknown) => {
          throw withLocalHint(error, config.backend);
        });
        if (!options.expand)
          messages.forEach((m, i) => console.log(`published ${ids[i]}: ${JSON.stringify(m.json)}`));
      };
      try {
        if (!options.expand) {
          const force = options.force ? { force: true } : {};
          const json =
            options.prefix !== undefined
              ? { bucket: options.bucket, prefix: options.prefix, ...force }
              : {
                  bucket: options.bucket,
                  name: options.name,
                  generation: options.generation,
                  ...force,
                };
          await send([{ json }]);
          return;
        }
        const counts = await publishExpanded(store, options, config, send);
        const verb = options.dryRun ? 'would publish' : 'published';
        console.log(
          `${verb} ${counts.messages} messages for ${counts.objects} objects under gs://${options.bucket}/${options.prefix}`,
        );
        if (counts.rejected.length > 0) throw new Error(counts.rejected.join('; '));
      } finally {
        await publisher.close();
      }
    });
}

/** A request for a bucket that does not exist would only report 0 objects: stop here instead. */
async function requireBucket(store: ObjectStore, bucket: string, prefix: string): Promise<void> {
  const listing = store.list(bucket, prefix)[Symbol.asyncIterator]();
  try {
    await listing.next();
  } catch (error) {
    if (error instanceof BucketNotFoundError)
      throw new Error(`--bucket: ${error.message}`, { cause: error });
    throw error;
  } finally {
    await listing.return?.();
  }
}

async function publishExpanded(
  store: ObjectStore,
  options: Options,
  config: ReturnType<typeof readConfig>,
  send: (messages: OutgoingMessage[]) => Promise<void>,
) {
  const bar = new SingleBar(
    {
      format: 'publishing [{bar}] {value} objects | {messages} messages',
      noTTYOutput: false,
      stream: process.stderr,
    },
    Presets.shades_classic,
  );
  const show = process.stderr.isTTY && !options.dryRun;
  if (show) bar.start(0, 0, { messages: 0 });
  const counts = { messages: 0, objects: 0, rejected: [] as string[] };
  let batch: OutgoingMessage[] = [];
  const flush = async () => {
    await send(batch);
    batch = [];
    if (show) bar.update(counts.objects, { messages: counts.messages });
  };
  try {
    for await (const item of fanOutMessages(
      store.list(options.bucket, options.prefix ?? ''),
      config,
      {
        force: options.force ?? false,
      },
    )) {
      if (item.kind === 'rejected') {
        counts.rejected.push(`${item.objects.length} objects not published: ${item.reason}`);
        continue;
      }
      batch.push(item.message);
      counts.messages++;
      counts.objects += item.objects.length;
      if (show) bar.setTotal(counts.objects);
      if (batch.length >= 500) await flush();
    }
    await flush();
  } finally {
    if (show) bar.stop();
  }
  return counts;
}

/** Locally, without the Pub/Sub emulator, publishing cannot work: say what does. */
function withLocalHint(error: unknown, backend: Backend): unknown {
  if (backend !== 'local' || process.env.PUBSUB_EMULATOR_HOST) return error;
  return new Error(
    `${firstLine(errorMessage(error))}: the local backend has no Pub/Sub; to load an object again, run \`gcs-bq-ingest emit <file> --force\` while dev runs (or set PUBSUB_EMULATOR_HOST to publish to the emulator)`,
    { cause: error },
  );
}
