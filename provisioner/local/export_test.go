package local

// WithoutCgroups makes d end sessions by uid alone, as on a machine
// without cgroup v2, so that tests cover that path on machines with one.
func WithoutCgroups(d *Driver) { d.cgroups = cgroups{} }

// HasCgroups reports whether d puts sessions in cgroups of their own.
func HasCgroups(d *Driver) bool { return d.cgroups.available() }
