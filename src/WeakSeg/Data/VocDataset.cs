using System.Collections.Concurrent;

using WeakSeg.IO;

namespace WeakSeg.Data;

/// <summary>One image of a split: its files and its image-level foreground classes (1..K, ascending).</summary>
public sealed record VocSample(string Name, string ImagePath, string? MaskPath, int[] Classes);

/// <summary>A problem with one file of a dataset.</summary>
public sealed record DatasetProblem(string Path, string Problem)
{
    public override string ToString() => $"{Path}: {Problem}";
    public WeakSegException ToException() => WeakSegException.ForFile(Path, Problem);
}

/// <summary>
/// A PASCAL VOC 2012-style split (also the converted COCO layout written by <see cref="Coco.CocoMaskBuilder"/>).
/// <see cref="Open"/> is cheap: it reads the split list, checks that every image exists and resolves image-level labels
/// (labels.txt, else the classes present in the mask — masks are decoded for that, in parallel). <see cref="Validate"/>
/// decodes every image and mask and collects all problems.
/// </summary>
public sealed class VocDataset
{
    public string Root { get; }
    public string Split { get; }
    public VocLayout Layout { get; }
    public ClassNames ClassNames { get; }
    /// <summary>K: foreground classes.</summary>
    public int NumClasses => ClassNames.NumClasses;
    public IReadOnlyList<VocSample> Samples { get; }
    /// <summary>True when image-level labels come from root/labels.txt.</summary>
    public bool HasLabelsFile { get; }

    VocDataset(VocLayout layout, string split, ClassNames names, IReadOnlyList<VocSample> samples, bool hasLabelsFile)
    {
        Layout = layout; Root = layout.Root; Split = split; ClassNames = names; Samples = samples; HasLabelsFile = hasLabelsFile;
    }

    /// <summary>Opens a split; throws a <see cref="WeakSegException"/> naming the file at the first problem.</summary>
    public static VocDataset Open(string root, string split, IProgress<ProgressUpdate>? progress = null)
    {
        var (dataset, problems) = Scan(root, split, progress);
        if (problems.Count > 0) throw problems[0].ToException();
        return dataset;
    }

    /// <summary>
    /// Opens a split without stopping at bad files: samples with problems are left out and the problems returned.
    /// Still throws for problems that make the whole split unusable (no root, no split list, bad classes.txt).
    /// </summary>
    public static VocDataset OpenLenient(string root, string split, out IReadOnlyList<DatasetProblem> problems, IProgress<ProgressUpdate>? progress = null)
    {
        var (dataset, list) = Scan(root, split, progress);
        problems = list;
        return dataset;
    }

    /// <summary>Split names available under ImageSets/Segmentation (sorted).</summary>
    public static IReadOnlyList<string> AvailableSplits(string root)
    {
        var layout = new VocLayout(root);
        return Directory.Exists(layout.SplitsDir)
            ? Directory.GetFiles(layout.SplitsDir, "*.txt").Select(f => Path.GetFileNameWithoutExtension(f)!).Order(StringComparer.Ordinal).ToArray()
            : [];
    }

    static (VocDataset, List<DatasetProblem>) Scan(string root, string split, IProgress<ProgressUpdate>? progress)
    {
        var layout = new VocLayout(root);
        var names = ClassNames.ForRoot(layout.Root);
        var list = layout.ReadSplit(split);
        var problems = new List<DatasetProblem>();
        Dictionary<string, int[]>? labels = null;
        if (File.Exists(layout.LabelsFile)) labels = ImageLabelsFile.Read(layout.LabelsFile, names, problems);

        // Pass 1 (cheap): files exist, labels from labels.txt.
        var entries = new (string Name, string Image, string? Mask, int[]? Classes, DatasetProblem? Problem)[list.Count];
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < list.Count; i++)
        {
            var name = list[i];
            var image = layout.ImagePath(name);
            var mask = layout.MaskPath(name);
            DatasetProblem? problem = null;
            int[]? classes = null;
            if (!seen.Add(name))
                problem = new(layout.SplitFile(split), $"image '{name}' is listed twice");
            else if (InputFiles.Problem(image, "image") is { } fileProblem)
                problem = new(image, File.Exists(image) || new FileInfo(image).LinkTarget is not null
                    ? fileProblem                                                           // a link that dangles or loops, a FIFO, a huge file
                    : $"image '{name}' is listed in split '{split}' but the JPEG does not exist");
            else if (labels != null && labels.TryGetValue(name, out var fromFile))
                classes = fromFile;
            else if (mask == null)
                problem = new(Path.Combine(layout.MasksDir, name + ".png"),
                    labels == null ? "no mask and no labels.txt: the image-level labels of this image are unknown"
                                   : $"no mask and no line for '{name}' in {layout.LabelsFile}: the image-level labels of this image are unknown");
            entries[i] = (name, image, mask, classes, problem);
        }

        // Pass 2: labels from masks where needed (parallel decode; also checks the mask values).
        var pending = Enumerable.Range(0, entries.Length).Where(i => entries[i].Problem == null && entries[i].Classes == null).ToArray();
        if (pending.Length > 0)
        {
            long done = 0;
            Parallel.ForEach(pending, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
            {
                var e = entries[i];
                try
                {
                    var mask = LabelPng.Read(e.Mask!);
                    var bad = FindInvalidValue(mask, names.NumClasses);
                    if (bad != null) entries[i].Problem = new(e.Mask!, bad);
                    else entries[i].Classes = mask.ForegroundClasses();
                }
                catch (Exception ex) when (IsFileProblem(ex)) { entries[i].Problem = new(e.Mask!, StripPath(ex.Message, e.Mask!)); }
                long d = Interlocked.Increment(ref done);
                if (d % 64 == 0 || d == pending.Length) progress?.Report(new ProgressUpdate(d, pending.Length, "reading mask labels"));
            });
        }

        var samples = new List<VocSample>(entries.Length);
        foreach (var e in entries)
        {
            if (e.Problem != null) problems.Add(e.Problem);
            else samples.Add(new VocSample(e.Name, e.Image, e.Mask, e.Classes!));
        }
        return (new VocDataset(layout, split, names, samples, labels != null), problems);
    }

    /// <summary>Failures of one file that a scan lists with the others instead of stopping at.</summary>
    static bool IsFileProblem(Exception e) => e is WeakSegException or IOException or UnauthorizedAccessException or OutOfMemoryException or InvalidDataException;

    internal static string StripPath(string message, string path) =>
        message.StartsWith(path + ": ", StringComparison.Ordinal) ? message[(path.Length + 2)..] : message;

    /// <summary>A message for the first mask value outside 0..K and ≠ 255, or null.</summary>
    internal static string? FindInvalidValue(LabelMap mask, int numClasses)
    {
        var labels = mask.Labels;
        for (int i = 0; i < labels.Length; i++)
        {
            int v = labels[i];
            if (v > numClasses && v != LabelMap.Ignore)
                return $"mask value {v} at pixel ({i % mask.Width},{i / mask.Width}) is outside the class range 0..{numClasses} (and is not the ignore value 255)";
        }
        return null;
    }

    /// <summary>Decodes image <paramref name="index"/> (RGB).</summary>
    public RgbImage LoadImage(int index) => ImageCodec.Load(Samples[index].ImagePath);

    /// <summary>Decodes and checks the mask of sample <paramref name="index"/> (null when it has none).</summary>
    public LabelMap? LoadMask(int index) => LoadMask(Samples[index], NumClasses);

    /// <summary>Decodes a sample's mask and checks its values against 0..K ∪ {255}; null when the sample has no mask.</summary>
    public static LabelMap? LoadMask(VocSample sample, int numClasses)
    {
        if (sample.MaskPath == null) return null;
        var mask = LabelPng.Read(sample.MaskPath);
        var bad = FindInvalidValue(mask, numClasses);
        if (bad != null) throw WeakSegException.ForFile(sample.MaskPath, bad);
        return mask;
    }

    /// <summary>
    /// The check before a training run reads <paramref name="samples"/>: every image's header is read (format, size within
    /// <see cref="InputLimits.MaxImagePixels"/>, a regular file) and, when <paramref name="masks"/>, every mask is decoded and its values
    /// and size checked against its image. Throws the first problem in list order, with the count of the others, so a bad file is named
    /// before training instead of hours into it.
    /// </summary>
    public static void CheckFiles(IReadOnlyList<VocSample> samples, int numClasses, bool masks)
    {
        var problems = new ConcurrentBag<(int Index, DatasetProblem Problem)>();
        Parallel.For(0, samples.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            var s = samples[i];
            int w, h;
            try { (w, h) = ImageCodec.ReadSize(s.ImagePath); }
            catch (Exception ex) when (IsFileProblem(ex)) { problems.Add((i, new(s.ImagePath, StripPath(ex.Message, s.ImagePath)))); return; }
            if (!masks || s.MaskPath is null) return;
            try
            {
                var mask = LabelPng.Read(s.MaskPath);
                var bad = FindInvalidValue(mask, numClasses);
                if (bad != null) problems.Add((i, new(s.MaskPath, bad)));
                else if (mask.Width != w || mask.Height != h)
                    problems.Add((i, new(s.MaskPath, $"mask is {mask.Width}x{mask.Height} but its image is {w}x{h}")));
            }
            catch (Exception ex) when (IsFileProblem(ex)) { problems.Add((i, new(s.MaskPath, StripPath(ex.Message, s.MaskPath)))); }
        });
        if (problems.IsEmpty) return;
        var first = problems.OrderBy(p => p.Index).First().Problem;
        var more = problems.Count - 1;
        throw WeakSegException.ForFile(first.Path, first.Problem + (more > 0 ? $" (and {more} more problem{(more > 1 ? "s" : "")}; `weakseg info` lists them)" : ""));
    }

    /// <summary>
    /// Decodes every image and mask of the split (in parallel) and collects all problems: corrupt or truncated images,
    /// corrupt masks, mask size ≠ image size, mask values outside 0..K ∪ {255}. Also counts class frequencies.
    /// </summary>
    public DatasetReport Validate(IProgress<ProgressUpdate>? progress = null)
    {
        int k = NumClasses;
        var problems = new ConcurrentBag<(int Index, DatasetProblem Problem)>();
        var pixelTotals = new long[256];
        long done = 0, withMasks = 0;
        var gate = new object();
        Parallel.For(0, Samples.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount },
            () => new long[256],
            (i, _, local) =>
            {
                var s = Samples[i];
                int w = -1, h = -1;
                try { var img = ImageCodec.Load(s.ImagePath); w = img.Width; h = img.Height; }
                catch (Exception ex) when (IsFileProblem(ex)) { problems.Add((i, new(s.ImagePath, StripPath(ex.Message, s.ImagePath)))); }
                if (s.MaskPath != null)
                {
                    try
                    {
                        var mask = LabelPng.Read(s.MaskPath);
                        var bad = FindInvalidValue(mask, k);
                        if (bad != null) problems.Add((i, new(s.MaskPath, bad)));
                        else if (w > 0 && (mask.Width != w || mask.Height != h))
                            problems.Add((i, new(s.MaskPath, $"mask is {mask.Width}x{mask.Height} but its image is {w}x{h}")));
                        else
                        {
                            foreach (var v in mask.Labels) local[v]++;
                            Interlocked.Increment(ref withMasks);
                        }
                    }
                    catch (Exception ex) when (IsFileProblem(ex)) { problems.Add((i, new(s.MaskPath, StripPath(ex.Message, s.MaskPath)))); }
                }
                long d = Interlocked.Increment(ref done);
                if (d % 32 == 0 || d == Samples.Count) progress?.Report(new ProgressUpdate(d, Samples.Count, "decoding"));
                return local;
            },
            local => { lock (gate) for (int v = 0; v < 256; v++) pixelTotals[v] += local[v]; });

        var imagesPerClass = new long[k + 1];
        foreach (var s in Samples) foreach (var c in s.Classes) imagesPerClass[c]++;
        var pixelsPerClass = new long[k + 1];
        Array.Copy(pixelTotals, pixelsPerClass, k + 1);
        return new DatasetReport
        {
            ClassNames = ClassNames,
            Split = Split,
            Images = Samples.Count,
            ImagesWithMasks = (int)withMasks,
            ImagesPerClass = imagesPerClass,
            PixelsPerClass = pixelsPerClass,
            IgnorePixels = pixelTotals[LabelMap.Ignore],
            Problems = problems.OrderBy(p => p.Index).ThenBy(p => p.Problem.Path, StringComparer.Ordinal).Select(p => p.Problem).ToArray(),
        };
    }
}

/// <summary>What <see cref="VocDataset.Validate"/> found: counts per class and every problem.</summary>
public sealed class DatasetReport
{
    public required ClassNames ClassNames { get; init; }
    public required string Split { get; init; }
    public required int Images { get; init; }
    /// <summary>Images whose mask was read and counted.</summary>
    public required int ImagesWithMasks { get; init; }
    /// <summary>Index c (1..K): images whose image-level labels contain c; index 0 unused (0).</summary>
    public required long[] ImagesPerClass { get; init; }
    /// <summary>Index c (0..K): mask pixels of class c over all valid masks.</summary>
    public required long[] PixelsPerClass { get; init; }
    public required long IgnorePixels { get; init; }
    public required IReadOnlyList<DatasetProblem> Problems { get; init; }

    /// <summary>Share of class c among labelled (non-ignore) mask pixels, 0 when there are none.</summary>
    public double PixelShare(int c)
    {
        long total = PixelsPerClass.Sum();
        return total == 0 ? 0 : (double)PixelsPerClass[c] / total;
    }
}
