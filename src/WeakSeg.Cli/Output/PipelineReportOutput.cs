using System.Globalization;
using Spectre.Console;
using WeakSeg.Methods;
using WeakSeg.Pipelines;
using WeakSeg.Visualization;

namespace WeakSeg.Cli.Output;

/// <summary>A pipeline's report as `pipeline` and `compare` print it.</summary>
internal static class PipelineReportOutput
{
    /// <summary>The report's table, threshold, skipped metrics and files, as `pipeline` prints them.</summary>
    public static void Print(WsssPipelineReport report)
    {
        CliConsole.Stdout().Write(ReportTable(report));
        var written = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(report.ReportPath))!;
        Console.WriteLine($"pseudo-label threshold {report.Threshold.ToString("0.00", CultureInfo.InvariantCulture)} ({written["threshold_source"]})");
        foreach (var skipped in written["skipped_metrics"]!.AsArray()) Console.WriteLine($"skipped {skipped}");
        string Pct(System.Text.Json.Nodes.JsonNode? v) => v is null ? "-" : (100 * v.GetValue<double>()).ToString("F1", CultureInfo.InvariantCulture) + " %";
        foreach (var round in written["rounds"]?.AsArray() ?? [])
            Console.WriteLine($"round {round!["round"]}: cam_miou {Pct(round["cam_miou"])}, pseudo_miou {Pct(round["pseudo_miou"])} (its new labels), " +
                              $"val_miou {Pct(round["val_miou"])} (the method's own segmentation)");
        Console.WriteLine($"wrote {report.ReportPath}");
        Console.WriteLine($"wrote {Path.Combine(Path.GetDirectoryName(report.ReportPath)!, RunReport.FileName)}");
    }

    static Table ReportTable(WsssPipelineReport r)
    {
        var inv = CultureInfo.InvariantCulture;
        string Pct(double? v) => v is { } x && !double.IsNaN(x) ? string.Create(inv, $"{100 * x:F1}") : "-";
        var table = new Table().Title($"{r.Method} pipeline ({LocalizationMapKindNames.Name(r.Map)} maps)");
        table.AddColumn("stage");
        table.AddColumn(new TableColumn("mIoU %").RightAligned());
        table.AddColumn(new TableColumn("seconds").RightAligned());
        string Seconds(string prefix) => string.Create(inv, $"{r.Stages.Where(s => s.Name.StartsWith(prefix, StringComparison.Ordinal)).Sum(s => s.Seconds):F0}");
        table.AddRow("CAM (best threshold of the sweep)", Pct(r.CamMeanIou), Seconds("cam-") + " + maps " + Seconds("maps"));
        table.AddRow("pseudo labels (threshold " + r.Threshold.ToString("0.00", inv) + ")", Pct(r.PseudoMeanIou), Seconds("pseudo"));
        foreach (var (decoder, miou) in r.ValMeanIouByDecoder)
            table.AddRow(decoder == WsssPipeline.MethodDecoderName ? "val, the method's own decoder" : $"val, {decoder} decoder", Pct(miou),
                Seconds(decoder == WsssPipeline.MethodDecoderName ? "decoder-" : $"seg-{LocalizationMapKindNames.Name(r.Map)}-{decoder}"));
        table.AddRow("val, upper bound (ground truth)", Pct(r.UpperBoundMeanIou), Seconds("upper-bound"));
        table.AddRow("weak / full", r.WeakFullRatio is { } d ? d.ToString("0.000", inv) : "-", string.Create(inv, $"total {r.Seconds:F0}"));
        return table;
    }
}
