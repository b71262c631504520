package memory

// InProcess reports true: the store never blocks on I/O, so the limiter
// does not put a deadline on its calls (which would cost allocations).
func (s *Store) InProcess() bool { return true }
