package netpoll

import (
	"testing"

	"github.com/ccb70390/netpoll/internal/sys"
)

// A readable report that finds nothing to read (EAGAIN) must not leave the
// booked node in the input buffer: an idle connection would keep a whole
// node of memory until its next message.
func TestEmptyReadKeepsNoNode(t *testing.T) {
	a, b, err := sys.SocketPair()
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close(b)
	c := &connection{}
	c.init(a, "unix", nil)
	c.owner = c
	defer func() {
		_ = c.inputBuffer.Close()
		_ = c.outputBuffer.Close()
		_ = sys.Close(a)
	}()
	if err := c.onReadable(nil); err != nil {
		t.Fatal(err)
	}
	if held := heldNodes(c.inputBuffer); held != "" {
		t.Fatalf("after a read that found nothing, the input buffer holds %s; want no node", held)
	}
	if c.peerClosed.Load() {
		t.Fatal("EAGAIN was taken for the peer's EOF")
	}
}
