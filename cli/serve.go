package cli

import "github.com/spf13/cobra"

func newServe(e *env) *cobra.Command {
	return &cobra.Command{Use: "serve", Short: "Run the tracker that devices ask for updates"}
}

func newStats(e *env) *cobra.Command {
	return &cobra.Command{Use: "stats", Short: "Show per-build download statistics from the tracker"}
}
