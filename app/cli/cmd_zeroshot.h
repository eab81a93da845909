/*
 * cmd_zeroshot.h - entry points and usage texts of the zero-shot commands
 * (`classify`, `prompts`, `eval`), dispatched from main.c.
 */
#ifndef CLIPDEX_APP_CMD_ZEROSHOT_H
#define CLIPDEX_APP_CMD_ZEROSHOT_H

int cmd_classify(int argc, char **argv);
int cmd_prompts(int argc, char **argv);
int cmd_eval(int argc, char **argv);

extern const char usage_classify[];
extern const char usage_prompts[];
extern const char usage_eval[];

#endif
