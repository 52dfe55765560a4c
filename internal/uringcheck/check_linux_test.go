package uringcheck

import (
	"errors"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// On TCP the receive has never lost an EOF: every transfer must end with it
// and with every byte (Run fails on a short count).
func TestTCPTransfersEndWithTheirEOF(t *testing.T) {
	res, err := Run("tcp", 40)
	if err != nil {
		if errors.Is(err, ErrRefused) {
			t.Skipf("io_uring refused: %v", err)
		}
		t.Fatal(err)
	}
	if res.Transfers != 40 || res.LostEOF != 0 {
		t.Fatalf("Run(tcp, 40) = %+v; want 40 transfers and no lost EOF", res)
	}
}

func TestRunRefusesOtherNetworks(t *testing.T) {
	if _, err := Run("udp", 1); err == nil {
		t.Fatal("Run(udp) succeeded; want an error")
	}
}
