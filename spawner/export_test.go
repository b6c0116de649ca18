package spawner

// Seams for this package's tests.

// Spawned is how many children the spawner started.
func (c *Client) Spawned() uint64 { return c.spawned.Load() }

// Usable reports whether starts still go through the spawner.
func (c *Client) Usable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fd >= 0
}
