package tailbuf

import (
	"reflect"
	"testing"
)

func TestBuffer(t *testing.T) {
	tests := []struct {
		name     string
		writes   []string
		maxLines int
		maxLen   int
		want     []string
		complete []string // the lines given to OnLine
	}{
		{"lines", []string{"a\nb\n"}, 5, 10, []string{"a", "b"}, []string{"a", "b"}},
		{"split writes", []string{"ab", "c\nd", "e\n"}, 5, 10, []string{"abc", "de"}, []string{"abc", "de"}},
		{"unfinished last line", []string{"a\nb"}, 5, 10, []string{"a", "b"}, []string{"a"}},
		{"last lines kept", []string{"1\n2\n3\n4\n"}, 2, 10, []string{"3", "4"}, []string{"1", "2", "3", "4"}},
		{"unfinished line counts", []string{"1\n2\n3"}, 2, 10, []string{"2", "3"}, []string{"1", "2"}},
		{"long lines cut", []string{"abcdef\nxy", "zuvw"}, 5, 4, []string{"abcd", "xyzu"}, []string{"abcd"}},
		{"invalid UTF-8", []string{"a\xffb\n"}, 5, 10, []string{"a?b"}, []string{"a?b"}},
		{"nothing", nil, 5, 10, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(tt.maxLines, tt.maxLen)
			var got []string
			b.OnLine = func(l string) { got = append(got, l) }
			for _, w := range tt.writes {
				if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if l := b.Lines(); !reflect.DeepEqual(l, tt.want) {
				t.Errorf("Lines() = %q, want %q", l, tt.want)
			}
			if !reflect.DeepEqual(got, tt.complete) {
				t.Errorf("OnLine got %q, want %q", got, tt.complete)
			}
		})
	}
}
