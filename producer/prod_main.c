/* ee-producer: the client of the job protocol (docs/PROTOCOL.md). It holds
 * the key: prompts are tokenized with the plaintext tokenizer and
 * encrypted here, sent to keyless workers over Kafka, and their encrypted
 * output ids are decrypted here. The key never leaves this process. */
#include "prod_cmds.h"
#include "prod_exit.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
    fputs("usage: ee-producer COMMAND [flags]\n"
          "\n"
          "commands:\n"
          "  submit   encrypt prompts and send them as jobs; --wait prints the answers\n"
          "  wait     collect the answers of jobs sent earlier, by id\n"
          "  load     load test: send N jobs, measure latency and throughput\n"
          "  keygen   a client signing key (sealed and signed jobs)\n"
          "  seal     seal and sign a hand-written JSON request (for kcat)\n"
          "  index    add documents to a blind index (embedded by the workers, sealed)\n"
          "  ask      retrieval-augmented generation: search a blind index, open the\n"
          "           documents locally, ask the LLM with them (docs/RAG.md)\n"
          "  classify classify images blind: the stem runs here, a worker runs the\n"
          "           encrypted rest of the CNN (docs/VISION.md)\n"
          "\n"
          "Run 'ee-producer COMMAND --help' for the flags.\n"
          "\n" PROD_EXIT_HELP,
          f);
}

int prod_fail(const char *cmd, int code, const char *msg) {
    fflush(stdout);
    fprintf(stderr, "ee-producer %s: %s\n", cmd, msg);
    return code;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return PROD_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return PROD_EXIT_OK;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"submit", prod_cmd_submit}, {"wait", prod_cmd_wait}, {"load", prod_cmd_load},
                {"keygen", prod_cmd_keygen}, {"seal", prod_cmd_seal},
                {"index", prod_cmd_index},   {"ask", prod_cmd_ask},
                {"classify", prod_cmd_classify}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(cmd, cmds[i].name)) return cmds[i].fn(argc - 2, argv + 2);
    fprintf(stderr, "ee-producer: unknown command '%s' (try 'ee-producer --help')\n", cmd);
    return PROD_EXIT_USAGE;
}
