/*
 * store — directories and backups. A backup is LMDB's compacting copy
 * (mdb_env_copyfd2 with MDB_CP_COMPACT: a consistent snapshot taken in a
 * read txn, so writers go on) written into "<dest>.tmp-<pid>" and renamed
 * into place, so a half-written copy never has the final name.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log/log.h"
#include "store_impl.h"
#include "util/util.h"

#define STORE_PATH_MAX 4096
/* A foreign store remapping again and again during one copy. */
#define STORE_COPY_ATTEMPTS 4

static int
store_errno(int e)
{
	switch (e) {
	case ENOENT:
		return OD_ENOTFOUND;
	case EEXIST:
	case ENOTEMPTY:
		return OD_EEXIST;
	case EACCES:
	case EPERM:
		return OD_EPERM;
	case ENOMEM:
		return OD_ENOMEM;
	case ENAMETOOLONG:
	case ENOTDIR:
		return OD_EINVAL;
	default:
		return OD_EIO;
	}
}

int
store__mkdir_p(const char *path)
{
	char p[STORE_PATH_MAX];
	struct stat st;
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(p)) {
		return OD_EINVAL;
	}
	memcpy(p, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != '\0') {
			continue;
		}
		char c = p[i];
		p[i] = '\0';
		if (mkdir(p, 0700) != 0 && errno != EEXIST) {
			return store_errno(errno);
		}
		p[i] = c;
	}
	if (stat(path, &st) != 0) {
		return store_errno(errno);
	}
	return S_ISDIR(st.st_mode) ? 0 : OD_EEXIST;
}

/* 0 when dest does not exist or is an empty directory. */
static int
store_dest_free(const char *dest)
{
	struct stat st;
	struct dirent *e;
	DIR *d;
	int rv = 0;

	if (stat(dest, &st) != 0) {
		return errno == ENOENT ? 0 : store_errno(errno);
	}
	if (!S_ISDIR(st.st_mode)) {
		return OD_EEXIST;
	}
	if ((d = opendir(dest)) == NULL) {
		return store_errno(errno);
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0
		    && strcmp(e->d_name, "..") != 0) {
			rv = OD_EEXIST;
			break;
		}
	}
	closedir(d);
	return rv;
}

/* fsync a directory so a rename in it survives a crash. */
static void
store_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void) fsync(fd);
		close(fd);
	}
}

int
store__backup_env(MDB_env *env, const char *dest_in, bool follow_resize)
{
	char dest[STORE_PATH_MAX];
	char parent[STORE_PATH_MAX];
	char tmp[STORE_PATH_MAX + 32];
	char file[STORE_PATH_MAX + 48];
	bool made_tmp = false;
	int fd = -1;
	int rv = 0;
	int rc = 0;
	size_t n = strlen(dest_in);
	char *slash;

	if (n == 0 || n >= sizeof(dest)) {
		return OD_EINVAL;
	}
	memcpy(dest, dest_in, n + 1);
	while (n > 1 && dest[n - 1] == '/') {
		dest[--n] = '\0'; /* "b/" must not put the temp dir inside b */
	}
	if ((rv = store_dest_free(dest)) != 0) {
		return rv;
	}
	memcpy(parent, dest, n + 1);
	if ((slash = strrchr(parent, '/')) == NULL) {
		strcpy(parent, ".");
	} else if (slash == parent) {
		parent[1] = '\0';
	} else {
		*slash = '\0';
		if ((rv = store__mkdir_p(parent)) != 0) {
			return rv;
		}
	}

	snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", dest, (long) getpid());
	snprintf(file, sizeof(file), "%s/data.mdb", tmp);
	/* A leftover of an earlier failed attempt by a process with our pid.
	 */
	(void) unlink(file);
	(void) rmdir(tmp);
	if (mkdir(tmp, 0700) != 0) {
		rv = store_errno(errno);
		goto out;
	}
	made_tmp = true;
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || fchmod(fd, 0600) != 0) {
		rv = store_errno(errno);
		goto out;
	}
	for (int attempt = 1;; attempt++) {
		rc = mdb_env_copyfd2(env, fd, MDB_CP_COMPACT);
		if (rc != MDB_MAP_RESIZED || !follow_resize
		    || attempt == STORE_COPY_ATTEMPTS) {
			break;
		}
		/* The owner grew its map: adopt the new size, start over. */
		if (mdb_env_set_mapsize(env, 0) != 0 || ftruncate(fd, 0) != 0
		    || lseek(fd, 0, SEEK_SET) != 0) {
			break;
		}
	}
	if (rc != 0) {
		log_error("store: backup to %s: %s", dest, mdb_strerror(rc));
		rv = store__err(NULL, rc);
		goto out;
	}
	if (fsync(fd) != 0) {
		rv = store_errno(errno);
		goto out;
	}
	close(fd);
	fd = -1;
	if (rename(tmp, dest) != 0) {
		rv = store_errno(errno);
		goto out;
	}
	made_tmp = false;
	store_sync_dir(parent);
out:
	if (fd >= 0) {
		close(fd);
	}
	if (made_tmp) {
		(void) unlink(file);
		(void) rmdir(tmp);
	}
	return rv;
}

int
store_backup_path(const char *store_dir, const char *dest_dir)
{
	char data[STORE_PATH_MAX + 16];
	struct stat st;
	MDB_env *env = NULL;
	int rv = 0;
	int rc;

	if (store_dir == NULL || dest_dir == NULL || store_dir[0] == '\0'
	    || dest_dir[0] == '\0' || strlen(store_dir) >= STORE_PATH_MAX) {
		return OD_EINVAL;
	}
	snprintf(data, sizeof(data), "%s/data.mdb", store_dir);
	if (stat(data, &st) != 0) {
		return store_errno(errno);
	}
	if ((rc = mdb_env_create(&env)) != 0) {
		return store__err(NULL, rc);
	}
	/* Read-only and without a map size: LMDB takes the one recorded in
	 * the file, and the running owner keeps its writer lock to itself. */
	if ((rc = mdb_env_set_maxdbs(env, STORE_MAX_DBS + 3)) != 0
	    || (rc = mdb_env_open(
	            env, store_dir, MDB_RDONLY | MDB_NOTLS, 0600))
	        != 0) {
		log_error("store: open %s for backup: %s", store_dir,
		    mdb_strerror(rc));
		rv = store__err(NULL, rc);
		goto out;
	}
	rv = store__backup_env(env, dest_dir, true);
out:
	mdb_env_close(env);
	return rv;
}
