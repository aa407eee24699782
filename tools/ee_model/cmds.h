/* ee-model subcommands. Each returns the process exit status and prints its
 * own one-line error ("ee-model CMD: message") on failure. */
#ifndef EE_CMDS_H
#define EE_CMDS_H

int cmd_info(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_encrypt(int argc, char **argv);
int cmd_audit(int argc, char **argv);
/* cmd_audit for an eecnn --model (cmd_audit_cnn.c). */
int cmd_audit_cnn(int argc, char **argv);
int cmd_keyid(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_classify(int argc, char **argv);

/* Print "ee-model CMD: msg" to stderr; returns 1 (usage/data error). */
int cmd_fail(const char *cmd, const char *msg);

#endif
