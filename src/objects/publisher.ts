import { TransientError, errorMessage } from '../core/errors';

export interface OutgoingMessage {
  json: object;
  attributes?: Record<string, string>;
}

export interface PublishOptions {
  /** How long the client may try, its own retries included; default the client's (600 s). */
  timeoutMs?: number;
}

export interface Publisher {
  /** Publishes each message; resolves with their ids when all are accepted. */
  publish(topic: string, messages: OutgoingMessage[], options?: PublishOptions): Promise<string[]>;
  close(): Promise<void>;
}

/** Pub/Sub through @google-cloud/pubsub (honours PUBSUB_EMULATOR_HOST), loaded only when first used. */
export function createPubSubPublisher(projectId?: string): Publisher {
  let client: Promise<import('@google-cloud/pubsub').PubSub> | undefined;
  const pubsub = () => {
    client ??= import('@google-cloud/pubsub').then(
      ({ PubSub }) => new PubSub(projectId ? { projectId } : {}),
    );
    return client;
  };
  return {
    async publish(topicName, messages, options = {}) {
      const topic = (await pubsub()).topic(topicName, {
        batching: { maxMessages: 500, maxMilliseconds: 20 },
        // A timeout bounds the client's retries as a whole (google-gax: totalTimeoutMillis).
        ...(options.timeoutMs === undefined ? {} : { gaxOpts: { timeout: options.timeoutMs } }),
      });
      try {
        return await Promise.all(messages.map((m) => topic.publishMessage(m)));
      } catch (error) {
        throw new TransientError(`publishing to ${topicName} failed: ${errorMessage(error)}`, {
          cause: error,
        });
      }
    },
    async close() {
      if (client) await (await client).close();
    },
  };
}
