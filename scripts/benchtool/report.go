package main

import (
	"bufio"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// A row of the table, declared by the script in the order it is printed.
type row struct {
	metric, label, target string
	decimals              int
}

// cmdReport reads the results file and prints one markdown table: for each
// row, the median over rounds for HAProxy and for Sluice, the ratio
// Sluice/HAProxy of the medians, and whether the target holds.
//
// The file holds tab-separated lines:
//
//	row    METRIC LABEL TARGET DECIMALS
//	value  METRIC SERVER ROUND VALUE
//
// A target is empty or comma-separated clauses, all of which must hold:
// "ratio>=1.2", "sluice<=2", "ratio<1".
func cmdReport(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	fs.Parse(args)
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: report RESULTS_FILE")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	var rows []row
	values := map[string]map[string][]float64{} // metric -> server -> values
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Split(sc.Text(), "\t")
		switch {
		case fl[0] == "row" && len(fl) == 5:
			d, _ := strconv.Atoi(fl[4])
			rows = append(rows, row{metric: fl[1], label: fl[2], target: fl[3], decimals: d})
		case fl[0] == "value" && len(fl) == 5:
			v, err := strconv.ParseFloat(fl[4], 64)
			if err != nil {
				continue // a failed measurement: "n/a" in the table
			}
			if values[fl[1]] == nil {
				values[fl[1]] = map[string][]float64{}
			}
			values[fl[1]][fl[2]] = append(values[fl[1]][fl[2]], v)
		}
	}
	fmt.Println("| figure | HAProxy | Sluice | Sluice/HAProxy | target | | rounds min–max: HAProxy; Sluice |")
	fmt.Println("| --- | ---: | ---: | ---: | --- | --- | --- |")
	for _, r := range rows {
		if len(values[r.metric]) == 0 {
			continue // a figure this run left out (FIGS)
		}
		h := median(values[r.metric]["haproxy"])
		s := median(values[r.metric]["sluice"])
		ratio := s / h
		if h == 0 && s == 0 {
			ratio = 1
		}
		status := ""
		if r.target != "" {
			status = check(r.target, s, ratio)
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s; %s |\n", r.label,
			num(h, r.decimals), num(s, r.decimals), num(ratio, 2), r.target, status,
			span(values[r.metric]["haproxy"], r.decimals), span(values[r.metric]["sluice"], r.decimals))
	}
	return nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// span shows the lowest and highest value over the rounds.
func span(v []float64, decimals int) string {
	if len(v) == 0 {
		return "n/a"
	}
	return num(slices.Min(v), decimals) + "–" + num(slices.Max(v), decimals)
}

func num(v float64, decimals int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

// check evaluates a target on the Sluice median and the ratio.
func check(target string, sluice, ratio float64) string {
	for _, clause := range strings.Split(target, ",") {
		subject, rest, value := "", "", 0.0
		for _, op := range []string{">=", "<=", "<", ">"} {
			if a, b, ok := strings.Cut(clause, op); ok {
				subject, rest = strings.TrimSpace(a), op
				value, _ = strconv.ParseFloat(strings.TrimSpace(b), 64)
				break
			}
		}
		x := ratio
		if subject == "sluice" {
			x = sluice
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "n/a"
		}
		var ok bool
		switch rest {
		case ">=":
			ok = x >= value
		case "<=":
			ok = x <= value
		case "<":
			ok = x < value
		case ">":
			ok = x > value
		}
		if !ok {
			return "**missed**"
		}
	}
	return "met"
}
