package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// FileMeta is what the database knows of one file of the course tree.
type FileMeta struct {
	Path      string
	Parent    string
	Owner     string // whose quota it counts against; "" for course material
	Size      int64
	Hash      string
	Modified  time.Time
	UpdatedBy string
}

const fileColumns = `path, parent, owner, size, hash, modified, updated_by`

func scanFile(row pgx.Row) (FileMeta, error) {
	var m FileMeta
	err := row.Scan(&m.Path, &m.Parent, &m.Owner, &m.Size, &m.Hash, &m.Modified, &m.UpdatedBy)
	return m, notFound(err)
}

// UpsertFile records m, replacing what was known of its path.
func (db *DB) UpsertFile(ctx context.Context, m FileMeta) error {
	_, err := db.q.Exec(ctx, `INSERT INTO files (`+fileColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (path) DO UPDATE SET parent = EXCLUDED.parent, owner = EXCLUDED.owner, size = EXCLUDED.size,
			hash = EXCLUDED.hash, modified = EXCLUDED.modified, updated_by = EXCLUDED.updated_by`,
		m.Path, m.Parent, m.Owner, m.Size, m.Hash, m.Modified, m.UpdatedBy)
	return err
}

// FileByPath returns one file's metadata; ErrNotFound when unknown.
func (db *DB) FileByPath(ctx context.Context, path string) (FileMeta, error) {
	return scanFile(db.q.QueryRow(ctx, `SELECT `+fileColumns+` FROM files WHERE path = $1`, path))
}

// FilesIn returns the files directly in the folder parent.
func (db *DB) FilesIn(ctx context.Context, parent string) ([]FileMeta, error) {
	rows, err := db.q.Query(ctx, `SELECT `+fileColumns+` FROM files WHERE parent = $1`, parent)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (FileMeta, error) { return scanFile(r) })
}

// FilesUnder returns every file at or below path ("" is everything).
func (db *DB) FilesUnder(ctx context.Context, path string) ([]FileMeta, error) {
	rows, err := db.q.Query(ctx, `SELECT `+fileColumns+` FROM files
		WHERE $1 = '' OR path = $1 OR starts_with(path, $1 || '/')`, path)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (FileMeta, error) { return scanFile(r) })
}

// DeleteFiles forgets the given paths.
func (db *DB) DeleteFiles(ctx context.Context, paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	_, err := db.q.Exec(ctx, `DELETE FROM files WHERE path = ANY($1)`, paths)
	return err
}

// DeleteFilesUnder forgets path and everything below it.
func (db *DB) DeleteFilesUnder(ctx context.Context, path string) error {
	_, err := db.q.Exec(ctx, `DELETE FROM files WHERE path = $1 OR starts_with(path, $1 || '/')`, path)
	return err
}

// MoveFiles renames path and everything below it to newPath, in the file
// metadata and in the revisions, so history follows a renamed file. owner
// maps a new path to its owner.
func (db *DB) MoveFiles(ctx context.Context, path, newPath string, owner func(string) string) error {
	return db.WithTx(ctx, func(tx *DB) error {
		// Anything recorded at the destination is stale: it did not exist
		// on disk, or the move would have failed.
		if _, err := tx.q.Exec(ctx, `DELETE FROM files WHERE path = $1 OR starts_with(path, $1 || '/')`, newPath); err != nil {
			return err
		}
		rows, err := tx.q.Query(ctx, `SELECT `+fileColumns+` FROM files WHERE path = $1 OR starts_with(path, $1 || '/')`, path)
		if err != nil {
			return err
		}
		metas, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (FileMeta, error) { return scanFile(r) })
		if err != nil {
			return err
		}
		for _, m := range metas {
			np := newPath + m.Path[len(path):]
			if _, err := tx.q.Exec(ctx, `UPDATE files SET path = $2, parent = $3, owner = $4 WHERE path = $1`,
				m.Path, np, parentOf(np), owner(np)); err != nil {
				return err
			}
		}
		_, err = tx.q.Exec(ctx, `UPDATE file_revisions SET path = $2 || substr(path, length($1) + 1)
			WHERE path = $1 OR starts_with(path, $1 || '/')`, path, newPath)
		return err
	})
}

func parentOf(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return ""
}

// QuotaUsed is the bytes charged to owner: its files plus what it has in
// the trash.
func (db *DB) QuotaUsed(ctx context.Context, owner string) (int64, error) {
	var n int64
	err := db.q.QueryRow(ctx, `SELECT
		coalesce((SELECT sum(size) FROM files WHERE owner = $1), 0) +
		coalesce((SELECT sum(size) FROM trash WHERE username = $1), 0)`, owner).Scan(&n)
	return n, err
}

// Revision is one saved version of a text file.
type Revision struct {
	ID      int64     `json:"id"`
	Path    string    `json:"-"`
	Size    int64     `json:"size"`
	Hash    string    `json:"hash"`
	Author  string    `json:"author"`
	Created time.Time `json:"created"`
	// Content is nil when the version was too large to keep.
	Content []byte `json:"-"`
}

// AddRevision records r and keeps only the newest keep revisions of its path.
func (db *DB) AddRevision(ctx context.Context, r Revision, keep int) (Revision, error) {
	err := db.WithTx(ctx, func(tx *DB) error {
		err := tx.q.QueryRow(ctx, `INSERT INTO file_revisions (path, size, hash, author, created, content)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, r.Path, r.Size, r.Hash, r.Author, r.Created, r.Content).Scan(&r.ID)
		if err != nil {
			return err
		}
		_, err = tx.q.Exec(ctx, `DELETE FROM file_revisions WHERE path = $1 AND id NOT IN
			(SELECT id FROM file_revisions WHERE path = $1 ORDER BY id DESC LIMIT $2)`, r.Path, keep)
		return err
	})
	return r, err
}

// Revisions lists a path's revisions, newest first, without content.
func (db *DB) Revisions(ctx context.Context, path string) ([]Revision, error) {
	rows, err := db.q.Query(ctx, `SELECT id, path, size, hash, author, created FROM file_revisions
		WHERE path = $1 ORDER BY id DESC`, path)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Revision, error) {
		var v Revision
		err := r.Scan(&v.ID, &v.Path, &v.Size, &v.Hash, &v.Author, &v.Created)
		return v, err
	})
}

// RevisionByID returns one revision with its content; ErrNotFound when it
// does not exist or belongs to another path.
func (db *DB) RevisionByID(ctx context.Context, path string, id int64) (Revision, error) {
	var v Revision
	err := db.q.QueryRow(ctx, `SELECT id, path, size, hash, author, created, content FROM file_revisions
		WHERE id = $1 AND path = $2`, id, path).Scan(&v.ID, &v.Path, &v.Size, &v.Hash, &v.Author, &v.Created, &v.Content)
	return v, notFound(err)
}

// LatestRevisionHash is the hash of a path's newest revision, "" if none.
func (db *DB) LatestRevisionHash(ctx context.Context, path string) (string, error) {
	var h string
	err := db.q.QueryRow(ctx, `SELECT hash FROM file_revisions WHERE path = $1 ORDER BY id DESC LIMIT 1`, path).Scan(&h)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return h, err
}

// TrashEntry is one deleted file or folder.
type TrashEntry struct {
	ID           int64
	Username     string
	OriginalPath string
	TrashName    string
	IsDir        bool
	Size         int64
	DeletedAt    time.Time
}

const trashColumns = `id, username, original_path, trash_name, is_dir, size, deleted_at`

func scanTrash(row pgx.Row) (TrashEntry, error) {
	var e TrashEntry
	err := row.Scan(&e.ID, &e.Username, &e.OriginalPath, &e.TrashName, &e.IsDir, &e.Size, &e.DeletedAt)
	return e, notFound(err)
}

// AddTrash records a deletion and, in the same transaction, forgets the
// metadata of what was deleted.
func (db *DB) AddTrash(ctx context.Context, e TrashEntry) (TrashEntry, error) {
	err := db.WithTx(ctx, func(tx *DB) error {
		if _, err := tx.q.Exec(ctx, `DELETE FROM files WHERE path = $1 OR starts_with(path, $1 || '/')`, e.OriginalPath); err != nil {
			return err
		}
		var err error
		e, err = scanTrash(tx.q.QueryRow(ctx, `INSERT INTO trash (username, original_path, trash_name, is_dir, size, deleted_at)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+trashColumns,
			e.Username, e.OriginalPath, e.TrashName, e.IsDir, e.Size, e.DeletedAt))
		return err
	})
	return e, err
}

// TrashOf lists a user's trash, newest first.
func (db *DB) TrashOf(ctx context.Context, username string) ([]TrashEntry, error) {
	rows, err := db.q.Query(ctx, `SELECT `+trashColumns+` FROM trash WHERE username = $1 ORDER BY id DESC`, username)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (TrashEntry, error) { return scanTrash(r) })
}

// TrashByID returns one of username's trash entries; ErrNotFound for
// another user's.
func (db *DB) TrashByID(ctx context.Context, username string, id int64) (TrashEntry, error) {
	return scanTrash(db.q.QueryRow(ctx, `SELECT `+trashColumns+` FROM trash WHERE id = $1 AND username = $2`, id, username))
}

// DeleteTrash forgets a trash entry.
func (db *DB) DeleteTrash(ctx context.Context, id int64) error {
	_, err := db.q.Exec(ctx, `DELETE FROM trash WHERE id = $1`, id)
	return err
}

// ExpiredTrash lists entries deleted before cutoff.
func (db *DB) ExpiredTrash(ctx context.Context, cutoff time.Time) ([]TrashEntry, error) {
	rows, err := db.q.Query(ctx, `SELECT `+trashColumns+` FROM trash WHERE deleted_at < $1 ORDER BY id`, cutoff)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (TrashEntry, error) { return scanTrash(r) })
}
