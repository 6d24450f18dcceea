/* cmd_balance: the `mica balance`, `mica drain` and `mica undrain`
 * commands (cmd_balance.c), run by tools/mica/main.c.
 *
 * Each takes the open client and the command's argv (argv[0] is the
 * command name), prints its results on stdout and one line on stderr when
 * it fails, and returns the exit status: 0 success, 1 failure, 2 bad usage.
 * The usage and help texts are the command table's (main.c). */
#ifndef MICA_TOOLS_MICA_CMD_BALANCE_H
#define MICA_TOOLS_MICA_CMD_BALANCE_H

#include "mica/mica.h"

#define CMD_BALANCE_USAGE \
  "[--dry-run | --plan | --apply FILE | --mode auto|suggest|off]"
#define CMD_BALANCE_HELP                                                     \
  "Runs the balancer once; or:\n"                                            \
  "  --dry-run       shows the moves it would make\n"                        \
  "  --plan          writes them as a JSON plan on stdout, with each\n"      \
  "                  tablet's epochs, for review\n"                          \
  "  --apply FILE    carries out a reviewed plan only if every move still\n" \
  "                  holds (same epochs, same source; target live and not\n" \
  "                  draining); otherwise names the stale moves, makes\n"    \
  "                  none of them and exits 1\n"                             \
  "  --mode M        sets the balancer's mode: auto (moves on its own),\n"   \
  "                  suggest (only proposes, see /api/balance) or off\n"     \
  "\nExample:\n  mica balance --plan > plan.json\n"                         \
  "  mica balance --apply plan.json\n"
#define CMD_DRAIN_USAGE "SERVER [--no-wait] [--timeout SECONDS]"
#define CMD_DRAIN_HELP                                                       \
  "Marks SERVER (an id or HOST:PORT) draining: it takes no new tablets and\n" \
  "the master moves its tablets away a few at a time. Prints the progress\n" \
  "and returns once the server holds no tablets (exit 1 after --timeout,\n"  \
  "default 600 s; --no-wait returns at once). The mark is kept across\n"     \
  "master restarts until `mica undrain`.\n"                                  \
  "\nExample:\n  mica drain 127.0.0.1:7101\n"
#define CMD_UNDRAIN_USAGE "SERVER"
#define CMD_UNDRAIN_HELP                                                     \
  "Lets SERVER (an id or HOST:PORT) take tablets again after `mica drain`.\n" \
  "\nExample:\n  mica undrain 2\n"

int cmd_balance_run(mica_client *c, int argc, char **argv);
int cmd_drain_run(mica_client *c, int argc, char **argv);
int cmd_undrain_run(mica_client *c, int argc, char **argv);

#endif
