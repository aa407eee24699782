/* ee-producer subcommands. Each returns the process exit status
 * (prod_exit.h) and prints its own one-line errors
 * ("ee-producer SUB: message"). */
#ifndef PROD_CMDS_H
#define PROD_CMDS_H

int prod_cmd_submit(int argc, char **argv);
int prod_cmd_wait(int argc, char **argv);
int prod_cmd_load(int argc, char **argv);
int prod_cmd_keygen(int argc, char **argv);
int prod_cmd_seal(int argc, char **argv);
int prod_cmd_index(int argc, char **argv);
int prod_cmd_ask(int argc, char **argv);
int prod_cmd_classify(int argc, char **argv);

/* Print "ee-producer CMD: msg" on stderr; returns code. */
int prod_fail(const char *cmd, int code, const char *msg);

#endif
