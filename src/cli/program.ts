/**
 * The whole discue program, every command registered: for --help, the
 * completion generator and the tests. `main` loads only the command it runs.
 */
import type { Command } from 'commander';
import { registerCompletion } from './commands/completion.js';
import { registerConfig } from './commands/config.js';
import { registerDaemon } from './commands/daemon.js';
import { registerDeliveries } from './commands/deliveries.js';
import { registerDoctor } from './commands/doctor.js';
import { registerListen } from './commands/listen.js';
import { registerListener } from './commands/listener.js';
import { registerMessages } from './commands/messages.js';
import { registerPublish } from './commands/publish.js';
import { registerQueue } from './commands/queue.js';
import { registerToken } from './commands/token.js';
import { registerTop } from './commands/top.js';
import { registerExport, registerImport } from './commands/transfer.js';
import { registerVersion } from './commands/version.js';
import { createRoot, finishProgram } from './root.js';

export function buildProgram(): Command {
  const program = createRoot();
  registerDaemon(program);
  registerQueue(program);
  registerPublish(program);
  registerMessages(program);
  registerListener(program);
  registerListen(program);
  registerDeliveries(program);
  registerToken(program);
  registerTop(program);
  registerExport(program);
  registerImport(program);
  registerConfig(program);
  registerCompletion(program);
  registerVersion(program);
  registerDoctor(program);
  return finishProgram(program);
}
