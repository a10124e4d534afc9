/*
 * linstor-provision-disk's declaration of the liblvm2cmd ABI (LVM2's command
 * library), written from LVM2's documentation for bindgen. Only what the tool
 * calls is declared. liblvm2cmd runs LVM commands in-process: lvm2_run() takes a
 * command line that it splits on whitespace (no quoting), so callers must pass
 * arguments free of whitespace.
 */
#ifndef LINSTOR_PROVISION_DISK_LVM2CMD_H
#define LINSTOR_PROVISION_DISK_LVM2CMD_H

/* Called for every message LVM logs: level (LVM2_LOG_*), source file and line,
 * the device-mapper errno if any, and the message text (not newline-terminated). */
typedef void (*lvm2_log_fn_t)(int level, const char *file, int line, int dm_errno,
                              const char *message);

/* Message levels passed to the log callback. */
#define LVM2_LOG_SUPPRESS 0
#define LVM2_LOG_FATAL 2
#define LVM2_LOG_ERROR 3
#define LVM2_LOG_PRINT 4
#define LVM2_LOG_VERBOSE 5
#define LVM2_LOG_VERY_VERBOSE 6
#define LVM2_LOG_DEBUG 7

/* lvm2_run() results. */
#define LVM2_COMMAND_SUCCEEDED 1
#define LVM2_NO_SUCH_COMMAND 2
#define LVM2_INVALID_PARAMETERS 3
#define LVM2_INIT_FAILED 4
#define LVM2_PROCESSING_FAILED 5

/* Installs the process-wide log callback (NULL restores LVM's default output). */
void lvm2_log_fn(lvm2_log_fn_t log_fn);

/* Creates a command context; NULL on failure. */
void *lvm2_init(void);

/* Sets the highest level passed to the log callback for this context. */
void lvm2_log_level(void *handle, int level);

/* Runs one LVM command line, e.g. "pvcreate /dev/vda1"; returns LVM2_* above. */
int lvm2_run(void *handle, const char *cmdline);

/* Frees a context made by lvm2_init(). */
void lvm2_exit(void *handle);

#endif
