package logging

// Stats reports how many lines were dropped so far and how many wait.
func (w *Writer) Stats() (dropped uint64, waiting int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.total, len(w.queue)
}
