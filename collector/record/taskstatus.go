package record

// TaskStatus is the payload of a KindTaskStatus record: the state of one task
// on one device (DESIGN.md §2 flow 4).
type TaskStatus struct {
	TaskID  string `json:"task_id"`
	Status  string `json:"status"`
	Cause   string `json:"cause,omitempty"`
	Message string `json:"message,omitempty"`
}
