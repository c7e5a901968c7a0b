/* mtgrad — command-line front end (placeholder main; the real CLI is being written). */
#include "mtgrad.h"

#include <stdio.h>

int main(void)
{
    for (size_t i = 0; i < mtgrad_method_count(); i++)
        printf("%s\n", mtgrad_method_name(mtgrad_method_at(i)));
    return 0;
}
