using System.Text;
using WeakSeg.IO;

namespace WeakSeg.Data.Synthetic;

/// <summary>
/// WeakSeg's built-in synthetic WSSS benchmark, written in the PASCAL VOC 2012 layout (<see cref="VocLayout"/>):
/// JPEGImages/NAME.jpg, SegmentationClass/NAME.png (VOC palette, 255 border), ImageSets/Segmentation/{train,train_aug,val,trainval}.txt,
/// classes.txt, labels.txt (image-level labels) and scenes.txt (the background family of each image, for trap analysis).
/// </summary>
public static class SyntheticDataset
{
    /// <summary>Name of image <paramref name="index"/> of <paramref name="split"/> ("train_000042", "val_000007").</summary>
    public static string ImageName(SyntheticSplit split, int index) => $"{(split == SyntheticSplit.Train ? "train" : "val")}_{index:D6}";

    /// <summary>Generates the whole dataset into <paramref name="outDir"/> (created if needed; files of the same names are overwritten).</summary>
    public static SyntheticDatasetSummary Generate(string outDir, SyntheticDatasetConfig config, IProgress<ProgressUpdate>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var errors = config.Validate();
        if (errors.Count > 0) throw new WeakSegException("invalid synthetic dataset settings: " + string.Join("; ", errors));
        if (string.IsNullOrWhiteSpace(outDir)) throw new WeakSegException("synthetic dataset output directory is empty");
        var root = Path.GetFullPath(outDir);
        if (File.Exists(root)) throw WeakSegException.ForFile(root, "output path is a file, expected a directory");
        bool created = !Directory.Exists(root);
        try { return GenerateInto(root, config, progress); }
        catch (Exception e)
        {
            // A half-written dataset is worse than none: a folder this call created is removed (one it was given keeps what it held).
            if (created) try { Directory.Delete(root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            // Parallel writers fail together (e.g. a full disk): report the first failure, not an AggregateException of all of them.
            if (e is AggregateException ae && ae.Flatten().InnerExceptions is { Count: > 0 } inner)
                throw inner[0] is WeakSegException w ? w : new WeakSegException(inner[0].Message + (created ? $" (the partial dataset {root} was removed)" : ""), inner[0]);
            throw;
        }
    }

    static SyntheticDatasetSummary GenerateInto(string root, SyntheticDatasetConfig config, IProgress<ProgressUpdate>? progress)
    {
        Directory.CreateDirectory(root);
        var layout = new VocLayout(root);
        Directory.CreateDirectory(layout.ImagesDir);
        Directory.CreateDirectory(layout.MasksDir);
        Directory.CreateDirectory(layout.SplitsDir);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var jobs = Enumerable.Range(0, config.TrainImages).Select(i => (Split: SyntheticSplit.Train, Index: i))
            .Concat(Enumerable.Range(0, config.ValImages).Select(i => (Split: SyntheticSplit.Val, Index: i)))
            .ToArray();
        var records = new ImageRecord[jobs.Length];
        int done = 0;
        var progressLock = new object();
        progress?.Report(new ProgressUpdate(0, jobs.Length));
        var options = new ParallelOptions { MaxDegreeOfParallelism = config.Threads > 0 ? config.Threads : Environment.ProcessorCount };
        Parallel.For(0, jobs.Length, options, j =>
        {
            var (split, index) = jobs[j];
            var name = ImageName(split, index);
            var generated = SyntheticImageGenerator.Generate(config, split, index);
            ImageCodec.Save(layout.ImagePath(name), generated.Image, config.JpegQuality);
            LabelPng.Write(Path.Combine(layout.MasksDir, name + ".png"), generated.Mask);
            records[j] = ImageRecord.From(name, split, generated, config.NumClasses);
            if (progress != null)
                lock (progressLock) progress.Report(new ProgressUpdate(++done, jobs.Length));
        });

        var train = records.Where(r => r.Split == SyntheticSplit.Train).ToArray();
        var val = records.Where(r => r.Split == SyntheticSplit.Val).ToArray();
        var classNames = SyntheticClassCatalog.ClassNames(config.NumClasses);
        WriteLines(layout.SplitFile("train"), train.Select(r => r.Name));
        WriteLines(layout.SplitFile("train_aug"), train.Select(r => r.Name));
        WriteLines(layout.SplitFile("val"), val.Select(r => r.Name));
        WriteLines(layout.SplitFile("trainval"), records.Select(r => r.Name));
        WriteLines(layout.ClassesFile, classNames);
        WriteLines(layout.LabelsFile, records.Select(r => string.Join(' ', [r.Name, .. r.Classes.Select(c => c.ToString(System.Globalization.CultureInfo.InvariantCulture))])));
        WriteLines(Path.Combine(root, "scenes.txt"), records.Select(r => r.Name + " " + SceneBackground.Name(r.Scene)));

        return Summarise(root, config, classNames, records, clock.Elapsed);
    }

    sealed record ImageRecord(string Name, SyntheticSplit Split, SceneKind Scene, int[] Classes, int Objects, long[] ClassPixels, long IgnorePixels, long TotalPixels)
    {
        public static ImageRecord From(string name, SyntheticSplit split, SyntheticImage image, int numClasses)
        {
            var pixels = new long[numClasses + 1];
            long ignore = 0;
            foreach (var v in image.Mask.Labels)
            {
                if (v == LabelMap.Ignore) ignore++;
                else pixels[v]++;
            }
            return new ImageRecord(name, split, image.Scene, image.Classes, image.Objects.Count, pixels, ignore, image.Mask.Labels.Length);
        }
    }

    static SyntheticDatasetSummary Summarise(string root, SyntheticDatasetConfig config, IReadOnlyList<string> classNames, ImageRecord[] records, TimeSpan elapsed)
    {
        int k = config.NumClasses;
        const int trap = SyntheticClassCatalog.TrapClass;
        bool hasTrap = k >= trap;
        long foreground = records.Sum(r => r.ClassPixels.Skip(1).Sum());
        var classes = Enumerable.Range(1, k).Select(c => new SyntheticClassStats(
            c, classNames[c],
            records.Count(r => r.Split == SyntheticSplit.Train && r.Classes.Contains(c)),
            records.Count(r => r.Split == SyntheticSplit.Val && r.Classes.Contains(c)),
            foreground == 0 ? 0 : (double)records.Sum(r => r.ClassPixels[c]) / foreground,
            records.Count(r => r.Scene == SceneKind.Water && r.Classes.Contains(c)))).ToArray();
        var scenes = Enum.GetValues<SceneKind>().ToDictionary(SceneBackground.Name, s => records.Count(r => r.Scene == s));
        return new SyntheticDatasetSummary
        {
            Root = root,
            ClassNames = classNames,
            TrainImages = config.TrainImages,
            ValImages = config.ValImages,
            Classes = classes,
            Scenes = scenes,
            MeanObjectsPerImage = records.Average(r => (double)r.Objects),
            MeanClassesPerImage = records.Average(r => (double)r.Classes.Length),
            IgnoreFraction = (double)records.Sum(r => r.IgnorePixels) / records.Sum(r => r.TotalPixels),
            TrapClass = hasTrap ? classNames[trap] : null,
            TrapScene = SceneBackground.Name(SceneKind.Water),
            TrapClassImages = hasTrap ? records.Count(r => r.Classes.Contains(trap)) : 0,
            TrapClassImagesOnTrapScene = hasTrap ? records.Count(r => r.Classes.Contains(trap) && r.Scene == SceneKind.Water) : 0,
            TrapSceneImages = records.Count(r => r.Scene == SceneKind.Water),
            TrapSceneImagesWithTrapClass = hasTrap ? records.Count(r => r.Classes.Contains(trap) && r.Scene == SceneKind.Water) : 0,
            Elapsed = elapsed,
        };
    }

    /// <summary>Writes lines with '\n' endings, UTF-8 without BOM, atomically.</summary>
    static void WriteLines(string path, IEnumerable<string> lines)
    {
        AtomicFile.WriteAllLines(path, lines);
    }
}
