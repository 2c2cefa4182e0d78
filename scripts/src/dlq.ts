import type { DeadLetterCommand } from './dead-letters.js';
import { UsageError, runCommand } from './run-command.js';

const USAGE = `usage: npm run dlq -- list | replay <id> | replay-all [--yes] | drop <id> [--yes]
  list          the dead letters, oldest first: where each failed, the orders it carries and why
  replay <id>   puts one dead letter's job back where it failed (list shows the ids)
  replay-all    puts every dead letter's job back where it failed
  drop <id>     removes one dead letter, and its failed job, whose work was done another way or is
                no longer wanted (never one of accepted orders: replay those; a refund still due
                comes back by itself a sweep later, so never pay one by hand and drop it)
  --yes         replay-all and drop without asking: at a terminal they ask first, saying how many
                letters; without one (a script, a pipe) they run only with it`;

function deadLetterCommand(args: readonly string[]): DeadLetterCommand {
  const [command, ...given] = args;
  const yes = (command === 'replay-all' || command === 'drop') && given.includes('--yes');
  const rest = yes ? given.filter((arg) => arg !== '--yes') : given;
  if (command === 'replay' || command === 'drop') {
    if (rest.length === 0) throw new UsageError(`${command} needs the id of a dead letter (npm run dlq -- list shows them)`);
    if (rest.length > 1) throw new UsageError(`${command} takes one id, not ${rest.join(' ')}`);
    return command === 'drop' ? { command, id: rest[0]!, yes } : { command, id: rest[0]! };
  }
  if (command !== 'list' && command !== 'replay-all') throw new UsageError(command === undefined ? 'a command is needed' : `unknown command: ${command}`);
  if (rest.length > 0) throw new UsageError(`${command} takes no arguments, not ${rest.join(' ')}`);
  return command === 'list' ? { command } : { command, yes };
}

/** npm run dlq -- list | replay <id> | replay-all [--yes] | drop <id> [--yes] */
runCommand({ usage: USAGE, parse: deadLetterCommand, flags: ['--yes'] }, async (asked) => (await import('./dead-letters.js')).runDeadLetterCommand(asked));
