package pgtest

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestDatabase connects to a fresh database and writes to it.
func TestDatabase(t *testing.T) {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, Database(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if _, err := c.Exec(ctx, `CREATE TABLE y (n int); INSERT INTO y VALUES (7)`); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(ctx, `SELECT n FROM y`).Scan(&n); err != nil || n != 7 {
		t.Fatalf("SELECT = %d, %v", n, err)
	}
}
