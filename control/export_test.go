package control

// Test seams: what only the tests ask of the connection machinery.

// counts is how many slots are taken and how many of them still read.
func (s *slots[C]) counts() (taken, reading int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size - s.free, s.reading.Len()
}
