"""Where raw telemetry comes from: files and stdin, Kubernetes pod logs, trace query APIs."""
