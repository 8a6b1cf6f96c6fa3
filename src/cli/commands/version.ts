import type { Command } from 'commander';
import { DiscueError, EXIT } from '../../protocol/errors.js';
import { PROTOCOL_VERSION } from '../../protocol/frames.js';
import { VERSION } from '../../version.js';
import { action, examples } from '../action.js';
import type { Context } from '../context.js';
import { fields } from '../format.js';

export interface DaemonVersion {
  running: boolean;
  version?: string;
  protocol?: number;
  pid?: number;
  /** Why the daemon could not be asked, when it is not simply stopped. */
  error?: { code: string; message: string };
}

export function registerVersion(program: Command): void {
  program
    .command('version')
    .description('show the versions and protocols of this CLI and of the running daemon (never starts one)')
    .addHelpText(
      'after',
      examples(
        'discue version',
        'discue version --json           # {"cli":{"version":..,"protocol":..},"daemon":{"running":..,...}}',
        'discue --version --json         # the same document',
        'discue --version                # only the CLI version, without asking the daemon',
      ),
    )
    .action(
      action(async (ctx) => {
        const cli = { version: VERSION, protocol: PROTOCOL_VERSION };
        const daemon = await daemonVersion(ctx);
        if (ctx.json) {
          ctx.printJson({ cli, daemon });
          return EXIT.OK;
        }
        let about = 'not running';
        if (daemon.version !== undefined) about = `${daemon.version} (protocol ${daemon.protocol}), pid ${daemon.pid}`;
        else if (daemon.error) about = `unreachable: ${daemon.error.message} [${daemon.error.code}]`;
        ctx.print(fields([['cli', `${cli.version} (protocol ${cli.protocol})`], ['daemon', about]]));
        if (daemon.protocol !== undefined && daemon.protocol !== cli.protocol) {
          ctx.note('the daemon speaks another protocol: run `discue daemon restart` so it matches the CLI');
        } else if (daemon.version !== undefined && daemon.version !== cli.version) {
          ctx.note('the daemon runs another version: run `discue daemon restart` to run this one');
        }
        return EXIT.OK;
      }),
    );
}

/** Who answers on the socket, from the handshake; never starts a daemon. Also used by `doctor`. */
export async function daemonVersion(ctx: Context): Promise<DaemonVersion> {
  try {
    const client = await ctx.connect({ autoStart: false });
    const { version, protocol, pid } = client.daemon;
    return { running: true, version, protocol, pid };
  } catch (err) {
    if (!(err instanceof DiscueError)) throw err;
    if (err.code === 'DAEMON_UNREACHABLE') return { running: false };
    // The daemon refuses a client of another protocol, but says who it is.
    const details = err.details as { daemonVersion?: unknown; daemonProtocol?: unknown; pid?: unknown } | undefined;
    if (err.code === 'PROTOCOL_MISMATCH' && typeof details?.daemonVersion === 'string') {
      return { running: true, version: details.daemonVersion, protocol: Number(details.daemonProtocol), pid: Number(details.pid) };
    }
    return { running: false, error: { code: err.code, message: err.message } };
  }
}
