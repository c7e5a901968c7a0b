/* cli.h — the subcommands of the mtgrad command-line tool (each in tools/cmd_<name>.c).
 * Each takes the arguments after the command name (argv[0] is the command name itself) and
 * returns the process exit status: 0 success, 1 failure, 2 usage error. */
#ifndef MTGRAD_TOOLS_CLI_H
#define MTGRAD_TOOLS_CLI_H

int mtgrad_cmd_check_golden(int argc, char **argv);
int mtgrad_cmd_methods(int argc, char **argv);
int mtgrad_cmd_aggregate(int argc, char **argv);
int mtgrad_cmd_train(int argc, char **argv);   /* cmd_train.c */
int mtgrad_cmd_compare(int argc, char **argv); /* cmd_compare.c */
int mtgrad_cmd_toy(int argc, char **argv);     /* cmd_toy.c */
int mtgrad_cmd_bench(int argc, char **argv);   /* cmd_bench.c */

/* Usage text of each command (printed by `mtgrad help CMD` and on usage errors). */
extern const char mtgrad_usage_check_golden[];
extern const char mtgrad_usage_methods[];
extern const char mtgrad_usage_aggregate[];
extern const char mtgrad_usage_train[];
extern const char mtgrad_usage_compare[];
extern const char mtgrad_usage_toy[];
extern const char mtgrad_usage_bench[];

/* cJSON tells of a failed allocation while a document is built only by leaving the item out
 * (cJSON_AddNumberToObject & co. return NULL, which the builders do not check one by one), so a
 * document built while memory ran out would be printed short, silently. main() routes cJSON's
 * allocations through a hook that remembers a failure (mtgrad_json_track_alloc), and
 * mtgrad_json_print, which every JSON output goes through, then refuses to print anything:
 * cJSON_Print's text, or NULL if that or any cJSON allocation before it failed. Free the text
 * with cJSON_free. (report.c) */
struct cJSON;
void mtgrad_json_track_alloc(void);
char *mtgrad_json_print(const struct cJSON *o);
/* cJSON_AddItemToObject and cJSON_AddItemToArray, for items made on the spot: when the item
 * cannot be added (its key's copy or its parent could not be allocated) cJSON leaves it with the
 * caller, and the builders, which pass cJSON_Create...() inline or fill the item after adding
 * it, would leak it. Such an item is parked on a list freed at exit instead (parking allocates
 * nothing, and the item stays valid for the code that fills it); the document is not printed. */
int mtgrad_json_add(struct cJSON *o, const char *key, struct cJSON *item);
int mtgrad_json_push(struct cJSON *array, struct cJSON *item);

#endif
