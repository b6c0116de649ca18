package reaper

// startChan is Start with the exit delivered on a channel, as most tests
// want it.
func (r *Reaper) startChan(c Cmd) (pid int, exited <-chan Exit, err error) {
	ch := make(chan Exit, 1)
	pid, err = r.Start(c, func(e Exit) { ch <- e }) // buffered: never blocks
	if err != nil {
		return 0, nil, err
	}
	return pid, ch, nil
}
