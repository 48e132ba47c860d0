"""The Backup app: a GTK4/libadwaita window over the tails-backup agent's D-Bus API."""
