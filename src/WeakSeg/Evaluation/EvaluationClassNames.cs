namespace WeakSeg.Evaluation;

/// <summary>
/// Class names for reports: root/classes.txt when present (one name per line, background first, blank lines skipped),
/// else the 21 PASCAL VOC names. (Stand-in for the dataset's ClassNames until the two are unified.)
/// </summary>
internal static class EvaluationClassNames
{
    public static readonly string[] Voc =
    [
        "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
        "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
    ];

    /// <summary>Background + K foreground names for the dataset at <paramref name="root"/>. Errors name classes.txt.</summary>
    public static string[] Load(string root)
    {
        var file = Path.Combine(root, "classes.txt");
        if (!File.Exists(file)) return (string[])Voc.Clone();
        var names = File.ReadLines(file).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
        if (names.Length < 2) throw WeakSegException.ForFile(file, $"needs background plus at least one class, found {names.Length} name(s)");
        if (names.Length > 255) throw WeakSegException.ForFile(file, $"has {names.Length} names; at most 255 classes fit in 8-bit masks (255 = ignore)");
        var dup = names.GroupBy(n => n).FirstOrDefault(g => g.Count() > 1);
        if (dup != null) throw WeakSegException.ForFile(file, $"class name '{dup.Key}' appears more than once");
        return names;
    }
}
