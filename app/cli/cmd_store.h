/*
 * cmd_store.h - entry points and usage texts of the commands that work on
 * the index database (`index`, `search`, `merge`, `ann`), dispatched from main.c.
 */
#ifndef CLIPDEX_APP_CMD_STORE_H
#define CLIPDEX_APP_CMD_STORE_H

int cmd_index(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_ann(int argc, char **argv);

extern const char usage_index[];
extern const char usage_search[];
extern const char usage_merge[];
extern const char usage_ann[];

#endif
