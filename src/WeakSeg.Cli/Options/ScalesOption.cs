using System.CommandLine;
using System.Globalization;

namespace WeakSeg.Cli.Options;

/// <summary>
/// <c>--scales</c>: comma-separated inference scales. One parser; the upper bound is the record's (e.g.
/// <see cref="Segmentation.SegmentationConfig.MaxInferenceScale"/>; the localization maps take any finite positive scale).
/// </summary>
internal static class ScalesOption
{
    /// <summary>The option with a default list of scales.</summary>
    public static Option<string> Create(string description, IEnumerable<double> defaults) =>
        new("--scales") { Description = description, DefaultValueFactory = _ => Format(defaults) };

    /// <summary>The option without a default (the command takes the scales of a run when it is not given).</summary>
    public static Option<string?> CreateOptional(string description) => new("--scales") { Description = description };

    public static string Format(IEnumerable<double> scales) => string.Join(",", scales.Select(s => s.ToString(CultureInfo.InvariantCulture)));

    /// <summary>The scales of <paramref name="text"/>, each a finite number in (0, <paramref name="max"/>].</summary>
    public static double[] Parse(string text, double max = double.MaxValue)
    {
        bool bounded = max < double.MaxValue;
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var scales = new double[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!double.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out scales[i]) || !(scales[i] > 0) || !(scales[i] <= max))
                throw new WeakSegException(bounded
                    ? string.Create(CultureInfo.InvariantCulture, $"--scales: '{parts[i]}' is not a scale in (0, {max}]")
                    : $"--scales: '{parts[i]}' is not a positive number (expected e.g. 1,0.5,1.5)");
        if (scales.Length == 0)
            throw new WeakSegException(bounded ? "--scales: give at least one scale, e.g. 1 or 0.75,1,1.25" : "--scales: no scale given (expected e.g. 1,0.5,1.5)");
        return scales;
    }
}
