Console.Error.WriteLine("peft: not implemented yet.");
return 1;
