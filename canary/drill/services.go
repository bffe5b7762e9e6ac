package drill

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// An Approach 2 service's router counts the operations it served
// (ended) and those running: their sum, over all labels, counts the
// operations it received, whenever they end.
const (
	serviceOpsMetric      = "gitgate_operations_total"
	serviceInFlightMetric = "gitgate_operations_in_flight"
)

// serviceCount reads an Approach 2 service's count of the operations it
// received (ended or running), from its metrics URL.
func serviceCount(ctx context.Context, url string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", url, err)
	}
	var n float64
	for _, m := range fams[serviceOpsMetric].GetMetric() {
		n += m.GetCounter().GetValue()
	}
	for _, m := range fams[serviceInFlightMetric].GetMetric() {
		n += m.GetGauge().GetValue()
	}
	return int64(n), nil
}

// serviceCounts reads every configured service's count; a service that
// cannot be read gets -1 and its error.
func (r *run) serviceCounts(ctx context.Context) ([]int64, []error) {
	n := make([]int64, len(r.cfg.Services))
	errs := make([]error, len(r.cfg.Services))
	for i, u := range r.cfg.Services {
		n[i], errs[i] = serviceCount(ctx, u)
		if errs[i] != nil {
			n[i] = -1
		}
	}
	return n, errs
}
