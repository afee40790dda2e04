package offline

import (
	"reflect"
	"testing"
)

func TestBatches(t *testing.T) {
	for _, tc := range []struct {
		sizes []int
		limit int
		want  [][2]int
	}{
		{nil, 10, nil},
		{[]int{3, 3, 3}, 10, [][2]int{{0, 3}}},
		{[]int{3, 3, 3, 3}, 10, [][2]int{{0, 3}, {3, 4}}},
		{[]int{5, 5, 5}, 10, [][2]int{{0, 1}, {1, 2}, {2, 3}}}, // the sum stays under the limit
		{[]int{50, 1, 1}, 10, [][2]int{{0, 1}, {1, 3}}},        // an item over the limit goes alone
	} {
		got := Batches(len(tc.sizes), func(i int) int { return tc.sizes[i] }, tc.limit)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Batches(%v, %d) = %v, want %v", tc.sizes, tc.limit, got, tc.want)
		}
	}
}
