import * as net from 'node:net';
import * as path from 'node:path';

/**
 * The receiver process that `dev` starts: the Functions Framework serving the `ingest` target, which
 * also tells `dev` over IPC when its server listens or cannot. A health answer on the port then
 * proves nothing by itself: another process may hold that port.
 */
export interface ReceiverMessage {
  listening?: number;
  failed?: string;
}

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
  net.Server.prototype.listen = listen; // only the framework's own server is reported
  this.once('listening', () => {
    const address = this.address();
    const message: ReceiverMessage = { listening: typeof address === 'object' ? address?.port : 0 };
    process.send?.(message);
  });
  // Handled here, the framework would crash with a stack trace: `dev` prints one line instead.
  this.once('error', (error: NodeJS.ErrnoException) => {
    const message: ReceiverMessage = { failed: error.code ?? error.message };
    if (process.send) process.send(message, () => process.exit(1));
    else process.exit(1);
  });
  return Reflect.apply(listen, this, args) as net.Server;
} as typeof listen;

const framework = path.dirname(require.resolve('@google-cloud/functions-framework'));
void import(path.join(framework, 'main.js'));
