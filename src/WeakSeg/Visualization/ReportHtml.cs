using System.Globalization;
using System.Net;
using System.Text;

namespace WeakSeg.Visualization;

/// <summary>
/// Building blocks of the self-contained HTML pages (<see cref="RunReport"/>, <see cref="ComparisonReport"/>): one file, inline CSS, no
/// script and no network; images are embedded as <c>data:</c> URIs. Every metric cell carries its exact recorded value in
/// <c>data-value</c> (round-trip format) next to the rounded text, so the page can be checked against the JSON it was made from.
/// </summary>
public sealed class ReportHtml
{
    /// <summary>Text shown for a stage or a value that has no record yet.</summary>
    public const string NotRun = "not run";

    const string Style = """
        body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 24px auto; max-width: 1200px;
               padding: 0 16px; color: #1d2330; background: #fff; }
        h1 { font-size: 24px; margin-bottom: 4px; } h2 { font-size: 19px; margin-top: 32px; border-bottom: 1px solid #d8dce4; padding-bottom: 4px; }
        h3 { font-size: 15px; margin: 16px 0 6px; }
        .sub { color: #5b6475; margin-top: 0; } .note { color: #5b6475; font-size: 13px; }
        table { border-collapse: collapse; font-size: 14px; margin: 8px 0; }
        th, td { border: 1px solid #d8dce4; padding: 4px 10px; text-align: left; vertical-align: top; overflow-wrap: anywhere; }
        table#settings td:first-child { white-space: nowrap; } table#settings td:last-child { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
        th { background: #f2f4f8; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
        td.missing { color: #9a6b00; background: #fff8e6; font-style: italic; }
        .plots { display: flex; flex-wrap: wrap; gap: 12px; } .plots figure { margin: 0; width: 560px; max-width: 100%; }
        .plots img { width: 100%; border: 1px solid #d8dce4; } .plots figure.wide { width: 900px; }
        figcaption { font-size: 13px; color: #5b6475; }
        table.grid td { padding: 3px; text-align: center; font-size: 12px; }
        table.grid img { width: 144px; image-rendering: auto; display: block; margin: 0 auto; }
        code { font-size: 13px; word-break: break-all; }
        .legend { font-size: 13px; margin: 6px 0; } .swatch { display: inline-block; width: 12px; height: 12px; border: 1px solid #888;
               vertical-align: -1px; margin: 0 4px 0 10px; }
        """;

    readonly StringBuilder _body = new();

    public static string Escape(string text) => WebUtility.HtmlEncode(text);

    /// <summary>A value in round-trip form for <c>data-value</c>.</summary>
    public static string Exact(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>A fraction as a percentage with two decimals.</summary>
    public static string Percent(double value) => (100 * value).ToString("0.00", CultureInfo.InvariantCulture) + " %";

    public static string DataUri(byte[] bytes, string mime) => $"data:{mime};base64,{Convert.ToBase64String(bytes)}";

    public ReportHtml Raw(string html) { _body.Append(html).Append('\n'); return this; }

    public ReportHtml Heading(int level, string text) => Raw($"<h{level}>{Escape(text)}</h{level}>");

    public ReportHtml Paragraph(string text, string cssClass = "note") => Raw($"<p class=\"{cssClass}\">{Escape(text)}</p>");

    /// <summary>A table; each cell is already HTML (use <see cref="Text"/>, <see cref="Metric"/>, <see cref="Missing"/>).</summary>
    public ReportHtml Table(IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows, string? id = null, string? cssClass = null)
    {
        var sb = new StringBuilder();
        sb.Append("<table").Append(id is null ? "" : $" id=\"{id}\"").Append(cssClass is null ? "" : $" class=\"{cssClass}\"").Append("><tr>");
        foreach (var h in header) sb.Append("<th>").Append(Escape(h)).Append("</th>");
        sb.Append("</tr>\n");
        foreach (var row in rows)
        {
            sb.Append("<tr>");
            foreach (var cell in row) sb.Append(cell);
            sb.Append("</tr>\n");
        }
        return Raw(sb.Append("</table>").ToString());
    }

    public static string Text(string text) => $"<td>{Escape(text)}</td>";

    public static string Missing(string why) => $"<td class=\"missing\">{Escape(why)}</td>";

    /// <summary>A metric cell: the value as a percentage (or with three decimals when not a fraction of pixels), its exact value in
    /// <c>data-value</c> and its key in <c>data-key</c>; a missing value shows <paramref name="missing"/>.</summary>
    public static string Metric(string key, double? value, bool percent = true, string missing = NotRun) => value is { } v && double.IsFinite(v)
        ? $"<td class=\"num\" data-key=\"{Escape(key)}\" data-value=\"{Exact(v)}\">{(percent ? Percent(v) : v.ToString("0.000", CultureInfo.InvariantCulture))}</td>"
        : $"<td class=\"missing\" data-key=\"{Escape(key)}\">{Escape(missing)}</td>";

    /// <summary>The VOC colour of each class name (index = class), as the label tiles draw them.</summary>
    public ReportHtml ClassLegend(IReadOnlyList<string> classNames)
    {
        var palette = Data.VocPalette.Rgb;
        var sb = new StringBuilder("<p class=\"legend\">Label colours (blended 50 % over the image):");
        for (int c = 0; c < classNames.Count && 3 * c + 2 < palette.Length; c++)
            sb.Append($"<span class=\"swatch\" style=\"background: rgb({palette[3 * c]}, {palette[3 * c + 1]}, {palette[3 * c + 2]})\"></span>{Escape(classNames[c])}");
        return Raw(sb.Append("</p>").ToString());
    }

    public static string Image(byte[] png, string alt, string mime = "image/png") =>
        $"<img src=\"{DataUri(png, mime)}\" alt=\"{Escape(alt)}\">";

    /// <summary>A chart with its caption; <paramref name="wide"/> shows it 900 px wide instead of 560.</summary>
    public ReportHtml Figure(byte[] png, string caption, bool wide = false) =>
        Raw($"<figure{(wide ? " class=\"wide\"" : "")}>{Image(png, caption)}<figcaption>{Escape(caption)}</figcaption></figure>");

    /// <summary>The whole page.</summary>
    public string Page(string title) =>
        $"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{Escape(title)}</title>\n<style>\n{Style}\n</style>\n</head>\n<body>\n{_body}</body>\n</html>\n";
}
