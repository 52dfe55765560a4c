package netpoll

import (
	"math/rand/v2"
	"testing"
)

// FuzzLinkBuffer decodes its input as a sequence of operations (see
// model.step), plays them on a LinkBuffer and on the byte-slice model, and
// fails on the first disagreement or on pooled memory not given back. The
// first byte picks the node size, so most operations span nodes.
func FuzzLinkBuffer(f *testing.F) {
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 1))
		in := make([]byte, 64+rng.IntN(512))
		for i := range in {
			in[i] = byte(rng.Uint32())
		}
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		withNodeSize(t, []int{64, 128, 4096}[int(in[0])%3])
		newModel(t, &byteChoices{data: in[1:]}).run()
	})
}
