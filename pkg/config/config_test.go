package config

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadDefaultsEnvAndFlags(t *testing.T) {
	c, err := Load([]string{"--memory-limit-mb", "256"}, env(map[string]string{"EXECUTION_TIMEOUT": "20", "PORT": "9090", "MEMORY_LIMIT_MB": "64"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.ExecutionTimeout != 20*time.Second || c.Addr != ":9090" || c.MemoryLimitMB != 256 || c.QuotaBytes != 100<<20 {
		t.Fatalf("got %+v", c)
	}
}

func TestLogLevel(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want slog.Level
	}{
		{"default", nil, nil, slog.LevelInfo},
		{"environment", map[string]string{"LOG_LEVEL": "debug"}, nil, slog.LevelDebug},
		{"any case", map[string]string{"LOG_LEVEL": "WARN"}, nil, slog.LevelWarn},
		{"flag wins", map[string]string{"LOG_LEVEL": "debug"}, []string{"--log-level", "error"}, slog.LevelError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(tc.args, env(tc.env))
			if err != nil || c.LogLevel != tc.want {
				t.Fatalf("LogLevel = %v, %v; want %v", c.LogLevel, err, tc.want)
			}
		})
	}
}

func TestLoadRejects(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"bad number", map[string]string{"MEMORY_LIMIT_MB": "lots"}, nil, "MEMORY_LIMIT_MB"},
		{"bad duration", map[string]string{"IDLE_TIMEOUT": "soon"}, nil, "IDLE_TIMEOUT"},
		{"bad port", map[string]string{"PORT": "99999"}, nil, "PORT"},
		{"root sandbox", map[string]string{"SANDBOX_UID": "0"}, nil, "SANDBOX_UID"},
		{"tiny memory", map[string]string{"MEMORY_LIMIT_MB": "4"}, nil, "MEMORY_LIMIT_MB"},
		{"weak bcrypt", map[string]string{"BCRYPT_COST": "4"}, nil, "BCRYPT_COST"},
		{"proxy not an address", map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8, proxy.example"}, nil, `TRUSTED_PROXIES: "proxy.example"`},
		{"proxy prefix too long", map[string]string{"TRUSTED_PROXIES": "10.0.0.0/40"}, nil, "TRUSTED_PROXIES"},
		{"unknown flag", nil, []string{"--no-such-flag"}, "no-such-flag"},
		{"retired flag", nil, []string{"--secret-key", "x"}, "secret-key"},
		{"stray argument", nil, []string{"extra"}, "unexpected argument"},
		{"unknown log level", map[string]string{"LOG_LEVEL": "verbose"}, nil, "LOG_LEVEL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.args, env(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
}

func TestTrustedProxies(t *testing.T) {
	tests := []struct {
		name, value string
		want        []netip.Prefix
	}{
		{"unset: none", "", nil},
		{"CIDRs and bare addresses, spaces ignored", " 10.0.0.0/8,127.0.0.1 , ::1,fd00::/8", []netip.Prefix{
			netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32"),
			netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("fd00::/8"),
		}},
		{"host bits are dropped", "192.168.1.7/24", []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(nil, env(map[string]string{"TRUSTED_PROXIES": tc.value}))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.TrustedProxies, tc.want) {
				t.Fatalf("TrustedProxies = %v, want %v", c.TrustedProxies, tc.want)
			}
		})
	}
}

// The example file documents every variable, so operators find them all.
func TestExampleEnvDocumentsEverySetting(t *testing.T) {
	b, err := os.ReadFile("../../deploy/pyide.env.example")
	if err != nil {
		t.Fatal(err)
	}
	var c Config
	for _, s := range c.settings() {
		if !strings.Contains(string(b), s.env+"=") {
			t.Errorf("deploy/pyide.env.example does not mention %s", s.env)
		}
	}
}

// TestBackupDirDefault: scheduled backups go into the server's private
// folder unless BACKUP_DIR says otherwise.
func TestBackupDirDefault(t *testing.T) {
	data := t.TempDir()
	c, err := Load(nil, env(map[string]string{"IDE_DATA_PATH": data}))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(data, ".server", "backups"); c.BackupDir != want {
		t.Errorf("BackupDir = %s, want %s", c.BackupDir, want)
	}
	c, err = Load(nil, env(map[string]string{"IDE_DATA_PATH": data, "BACKUP_DIR": "/var/backups/pyide"}))
	if err != nil || c.BackupDir != "/var/backups/pyide" {
		t.Errorf("BACKUP_DIR set: %q %v", c.BackupDir, err)
	}
}

// TestRetired: IDE_SECRET_KEY is no longer read; an environment that still
// sets it loads, and Retired names it for a warning.
func TestRetired(t *testing.T) {
	e := env(map[string]string{"IDE_SECRET_KEY": "0123abcd"})
	if _, err := Load(nil, e); err != nil {
		t.Fatal(err)
	}
	if got := Retired(e); !slices.Equal(got, []string{"IDE_SECRET_KEY"}) {
		t.Errorf("Retired = %v", got)
	}
	if got := Retired(env(nil)); len(got) != 0 {
		t.Errorf("Retired with nothing set = %v", got)
	}
	b, err := os.ReadFile("../../deploy/pyide.env.example")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "IDE_SECRET_KEY") {
		t.Error("deploy/pyide.env.example still documents IDE_SECRET_KEY")
	}
}
