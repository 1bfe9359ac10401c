package cli

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
	"github.com/cartona/deploy/state"
	"github.com/cartona/deploy/tracker"
)

// A command's parameters are the fields of its options struct tagged
// `param:"name"`, with flags "required"
// (asked for or named when missing; it has no default) and "cmdline"
// (taken from the command line only, never from a profile, the project
// config or the environment). Each parameter's flag is
// declared from the one entry of params below, with one help text.

// param is the flag of one parameter.
type param struct {
	help string
	def  func() any // string, bool, int or time.Duration; nil: the zero value
	// global parameters are the root's persistent flags, declared in cli.go.
	global bool
	// keyFile parameters name a private key file: their value is a path,
	// never the key's text (see checkKeyFiles).
	keyFile bool
}

var params = map[string]param{
	"json":    {global: true},
	"verbose": {global: true},
	"profile": {global: true},

	"app":          {help: "app name, as devices ask for it (grant, revoke: * for every app)"},
	"dir":          {help: "web build folder with index.html at its root"},
	"channel":      {help: "channel", def: func() any { return manifest.DefaultChannel }},
	"version":      {help: "version string devices get (default: 0.0.0-build.N, N the build number)"},
	"notes":        {help: "why: release notes kept in the build record and the channel's history"},
	"min_native":   {help: "lowest native app version this build runs on"},
	"max_native":   {help: "highest native app version this build runs on"},
	"rollout":      {help: "offer the build to this percentage (1-99) of the channel's devices first, as a staged rollout"},
	"build":        {help: "build number, as deploy list builds shows it"},
	"from":         {help: "channel whose stable build is promoted"},
	"to":           {help: "promote: the channel to move; rollback: the build number to go back to (default: the one served before)"},
	"percent":      {help: "share of the channel's devices that get the candidate, 0 to 100 (100 completes the rollout)"},
	"self_assign":  {help: "devices may pick this channel themselves (the plugin's setChannel)"},
	"device":       {help: "a device id, to show the build that device gets"},
	"native":       {help: "a native app version, to show the build a device with it gets"},
	"cdn":          {help: "public base URL that serves the store (https://d123.cloudfront.net); the tracker redirects downloads there"},
	"distribution": {help: "CloudFront distribution id to invalidate latest.json in"},
	"username":     {help: "user name in the ACL", def: func() any { return defaultUsername() }},
	"expires":      {help: "how long the channel's latest.json stays valid", def: func() any { return publish.DefaultExpiry }},

	"store":         {help: "store URL: file:///path (default " + defaultStoreURL() + ") or s3://bucket/prefix?region=..."},
	"aws_profile":   {help: "the AWS profile (of ~/.aws/config) for an S3 store and CloudFront (default: the SDK's, AWS_PROFILE)"},
	"root_key":      {help: "pinned root public key(s), ed25519:..., comma-separated (default: the public half of root_key_file)"},
	"root_key_file": {help: "the administrator's root private key", def: func() any { return defaultRootKeyFile() }, keyFile: true},
	"key_file":      {help: "your signing key file (private, mode 0600)", def: func() any { return defaultKeyFile() }, keyFile: true},

	"file":       {help: "the YAML ACL file (acl export: default stdout)"},
	"dry_run":    {help: "only show what would be signed and written; write nothing"},
	"force":      {help: "apply a file exported from an older ACL version, undoing the changes made since"},
	"can_upload": {help: "1 to grant, 0 to take back", def: func() any { return true }},
	"key":        {help: "the user's public key (ed25519:...), needed for a new user"},
	"root":       {help: "show the root public key"},

	"new_root_key_file": {help: "the new root private key (mode 0600) that signs the ACL from now on", keyFile: true},
	"keep_old_root":     {help: "also sign with root_key_file, so verifiers pinning only the old root still trust the ACL"},

	"addr":            {help: "listen address: :8080 is every interface, 127.0.0.1:8080 this machine only", def: func() any { return ":8080" }},
	"public_url":      {help: "the tracker's URL as devices reach it (default: from each request's Host)"},
	"db":              {help: "where events, device failures and floors live: sqlite:///path, or postgres://... shared by several trackers", def: func() any { return defaultStateURL() }},
	"stats_token":     {help: "token of the API under /api/ (for deploy stats) and of the dashboard at /dashboard (serve: default both disabled)"},
	"trust_proxy":     {help: "take client addresses from X-Forwarded-For (only behind a proxy that sets it)"},
	"cache_ttl":       {help: "how long a verified manifest is cached", def: func() any { return tracker.DefaultCacheTTL }},
	"retention":       {help: "how long raw events are kept, such as 720h; stats keep counting older ones (default: keep all)", def: func() any { return time.Duration(0) }},
	"metrics_addr":    {help: "serve Prometheus /metrics on this address instead of addr, such as 127.0.0.1:9090"},
	"min_acl_version": {help: "refuse any acl.json older than this version, also with an empty database (deploy init, grant, revoke and acl apply print it)"},
	"tracker":         {help: "tracker URL (deploy login saves it)"},

	"keep":       {help: "how many of the newest builds prune keeps, whatever else", def: func() any { return 10 }},
	"older_than": {help: "prune only builds recorded longer ago than this, and keep those that channel history names within it (0: any age, no history)"},
	"grace":      {help: "prune nothing written, or started, less than this ago", def: func() any { return publish.DefaultGrace }},

	"halt_percent":     {help: "halt a staged rollout when more than this percentage of its devices report a failure", def: func() any { return strconv.Itoa(tracker.DefaultHaltPercent) }},
	"halt_min_devices": {help: "...once at least this many devices got the candidate", def: func() any { return strconv.Itoa(tracker.DefaultHaltMinDevices) }},
	"halt_key_file":    {help: "the tracker's own key, granted only can_halt, that signs the halts it writes to the store", keyFile: true},
	"retry_limit":      {help: "set_fail, checksum_fail or unzip_fail reports after which a device is no longer offered a build", def: func() any { return strconv.Itoa(state.DefaultRetryLimit) }},
}

// field is one tagged field of an options struct.
type field struct {
	name              string
	required, cmdline bool
	value             reflect.Value
}

// fields lists the tagged fields of *opts, embedded structs included.
func fields(opts any) []field {
	var out []field
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		for i := 0; i < v.NumField(); i++ {
			sf := v.Type().Field(i)
			tag, ok := sf.Tag.Lookup("param")
			if !ok {
				if sf.Anonymous && sf.Type.Kind() == reflect.Struct {
					walk(v.Field(i))
				}
				continue
			}
			name, flags, _ := strings.Cut(tag, ",")
			out = append(out, field{name: name, value: v.Field(i),
				required: strings.Contains(flags, "required"), cmdline: strings.Contains(flags, "cmdline")})
		}
	}
	walk(reflect.ValueOf(opts).Elem())
	return out
}

// usesAnnotation lists the store and key parameters a command uses, of
// those storeOptions holds; its help hides the others.
const usesAnnotation = "deploy/uses"

// uses is the annotation of a command that uses the given store and key
// parameters; without it a command reads the store: store and root_key.
func uses(params string) map[string]string { return map[string]string{usesAnnotation: params} }

// hideUnused hides the storeOptions parameters c does not use.
func hideUnused(c *cobra.Command) {
	used := "store root_key"
	if u, ok := c.Annotations[usesAnnotation]; ok {
		used = u
	}
	for _, fd := range fields(&storeOptions{}) {
		if f := c.Flags().Lookup(fd.name); f != nil && !slices.Contains(strings.Fields(used), fd.name) {
			f.Hidden = true
		}
	}
}

// declare adds the flags of opts's parameters to c.
func declare(c *cobra.Command, opts any) {
	defer hideUnused(c)
	for _, fd := range fields(opts) {
		p, ok := params[fd.name]
		if !ok {
			panic("cli: no parameter " + fd.name)
		}
		if p.global {
			continue
		}
		var def any
		if p.def != nil && !fd.required { // a required parameter has no default
			def = p.def()
		}
		f := c.Flags()
		switch fd.value.Interface().(type) {
		case string:
			s, _ := def.(string)
			f.String(fd.name, s, p.help)
		case bool:
			b, _ := def.(bool)
			f.Bool(fd.name, b, p.help)
		case time.Duration:
			d, _ := def.(time.Duration)
			f.Duration(fd.name, d, p.help)
		case int:
			n, _ := def.(int)
			f.Int(fd.name, n, p.help)
		default:
			panic("cli: parameter " + fd.name + " of unsupported type")
		}
	}
}

// checkNames refuses an app or channel that is no name before the command
// reads or creates anything (a key, a store). An app may be * (grant and
// revoke take it for every app; the others refuse it as they run).
func checkNames(fs []field) error {
	for _, fd := range fs {
		if fd.name != "app" && fd.name != "channel" {
			continue
		}
		if v := fd.value.String(); v != "" && v != manifest.AllApps {
			if err := manifest.CheckName(fd.name, v); err != nil {
				return usageError{err}
			}
		}
	}
	return nil
}

// newCommand returns a command whose options, after the configuration is
// loaded, are filled into opts and handed to run.
func newCommand[O any](e *env, c *cobra.Command, opts *O, run func(context.Context, *O) error) *cobra.Command {
	declare(c, opts)
	e.completeFlags(c)
	c.RunE = func(c *cobra.Command, _ []string) error {
		if err := e.setup(c, opts); err != nil {
			return err
		}
		return run(c.Context(), opts)
	}
	return c
}

// setup loads the configuration for c and fills opts from it, once:
// parameters marked cmdline are cleared unless given on the command line,
// missing required ones are asked for or named.
func (e *env) setup(c *cobra.Command, opts any) error {
	cfg, err := e.load(c)
	if err != nil {
		return err
	}
	fs := fields(opts)
	var required []string
	for _, fd := range fs {
		if f := c.Flags().Lookup(fd.name); fd.cmdline && !f.Changed {
			cfg.v.Set(fd.name, f.DefValue)
		}
		if fd.required {
			required = append(required, fd.name)
		}
	}
	if err := cfg.require(required...); err != nil {
		return err
	}
	if err := cfg.checkKeyFiles(); err != nil { // again, for what was typed at a prompt
		return err
	}
	for _, fd := range fs {
		switch fd.value.Interface().(type) {
		case string:
			fd.value.SetString(cfg.str(fd.name))
		case bool:
			fd.value.SetBool(cfg.bool(fd.name))
		case time.Duration:
			fd.value.SetInt(int64(cfg.v.GetDuration(fd.name)))
		case int:
			s := cfg.str(fd.name)
			n, err := strconv.ParseInt(s, 10, 0)
			if s == "" {
				n, err = 0, nil
			}
			if err != nil { // from the environment or a config file: a flag was parsed already
				return valueError(c.Flags().Lookup(fd.name), s)
			}
			fd.value.SetInt(n)
		default:
			return fmt.Errorf("parameter %s of unsupported type", fd.name)
		}
	}
	if err := checkNames(fs); err != nil {
		return err
	}
	e.cfg = cfg
	if s, ok := opts.(interface{ stores() *storeOptions }); ok {
		e.where = s.stores()
	}
	return nil
}
